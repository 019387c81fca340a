"""Stock counts of the demo shop, taken at closing time on the last day of its period.

Every product gets a lead time (3 to 30 days, most within two weeks) and a safety stock of 3 to 7
days of its recent sales (units of completed orders over the last :data:`RECENT_DAYS` days, per
day). Most products hold a comfortable 30 to 120 days of sales beyond their lead time; a share
:data:`LOW_SHARE` of the selling products runs low, holding less than their lead time's sales (some
none), so a forecast that follows recent sales sees them fall under their safety stock before a
new delivery can arrive. Products without recent sales hold a few leftover units.
"""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.demo.catalog import Catalog
from patron.demo.purchases import Lines, Orders
from patron.demo.seasonality import SECONDS_PER_DAY, Clock

__all__ = ["COUNTED_AT", "LEAD_TIMES", "LOW_SHARE", "RECENT_DAYS", "draw_inventory", "recent_rate"]

RECENT_DAYS = 28
LOW_SHARE = 0.08
LEAD_TIMES = (3, 5, 7, 10, 14, 21, 30)
LEAD_TIME_P = (0.15, 0.2, 0.25, 0.15, 0.12, 0.08, 0.05)
SAFETY_DAYS = (3, 8)  # drawn from 3..7
COMFORT_DAYS = (30.0, 120.0)
COUNTED_AT = time(23, 0)


def recent_rate(orders: Orders, lines: Lines, catalog: Catalog, clock: Clock) -> NDArray[np.float64]:
    """Units per day of each product over the last ``RECENT_DAYS`` days, completed orders only."""
    since = (clock.days - RECENT_DAYS) * SECONDS_PER_DAY
    order = lines.order.astype(np.int64)
    counted = ~orders.cancelled[order] & (orders.seconds[order] >= since)
    units = np.bincount(lines.product[counted], weights=lines.quantity[counted], minlength=catalog.count)
    rate: NDArray[np.float64] = units / RECENT_DAYS
    return rate


def draw_inventory(
    rng: np.random.Generator, orders: Orders, lines: Lines, catalog: Catalog, clock: Clock, end: date
) -> pl.DataFrame:
    """One stock count per product: ``product_key, updated_at, on_hand, lead_time_days, safety_stock``."""
    count = catalog.count
    rate = recent_rate(orders, lines, catalog, clock)
    lead = np.asarray(LEAD_TIMES)[rng.choice(len(LEAD_TIMES), size=count, p=LEAD_TIME_P)]
    safety = np.ceil(rate * rng.integers(*SAFETY_DAYS, size=count)).astype(np.int64)
    comfortable = np.ceil(rate * (lead + rng.uniform(*COMFORT_DAYS, size=count))) + safety
    low = (rng.random(count) < LOW_SHARE) & (rate > 0)
    short = np.floor(rate * lead * rng.uniform(0.0, 1.0, size=count))
    leftover = rng.integers(0, 50, size=count)
    on_hand = np.where(rate > 0, np.where(low, short, comfortable), leftover).astype(np.int64)
    return pl.DataFrame(
        {
            "product_key": catalog.frame["product_key"],
            "updated_at": pl.Series([datetime.combine(end, COUNTED_AT)] * count, dtype=pl.Datetime("us")),
            "on_hand": on_hand,
            "lead_time_days": pl.Series(lead, dtype=pl.Int32),
            "safety_stock": safety,
        }
    )
