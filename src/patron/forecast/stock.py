r"""Low-stock warnings: project each product's stock over its lead time from the demand forecast.

For a product with ``on_hand`` units, lead time :math:`L` days, threshold :math:`\theta` (its safety
stock) and daily forecasts :math:`f_1, f_2, \ldots` from the as-of day on:

- projected stock at the end of day :math:`t`: :math:`P_t = \text{on\_hand} - \sum_{i \le t} f_i`
  (:math:`P_0` = on hand); no deliveries are assumed;
- warning when :math:`P_t < \theta` for some :math:`t \le L`; ``crosses_on`` is that day (the as-of
  day when the stock is already under the threshold), ``projected_min`` = :math:`P_L`;
- ``days_of_cover``: days until the forecast demand uses up the stock on hand (fractional, linear
  within a day); None when the forecast is zero or the stock lasts beyond a year;
- ``suggested_order`` = :math:`\lceil \max(0, \sum_{i \le L + R} f_i + \theta - \text{on\_hand}) \rceil`
  with a review period :math:`R` = :data:`REVIEW_DAYS`: an order placed today that arrives after the
  lead time and lasts until the next review with the safety stock intact (order-up-to level).

Beyond the forecast horizon, demand continues at the horizon's mean daily forecast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["COVER_CAP_DAYS", "REVIEW_DAYS", "WARNING_SCHEMA", "StockPosition", "StockWarning", "assess", "warn_all"]

REVIEW_DAYS = 14
COVER_CAP_DAYS = 365

WARNING_SCHEMA = pa.schema(
    [
        ("product_key", pa.string()),
        ("title", pa.string()),
        ("on_hand", pa.int64()),
        ("lead_time_days", pa.int32()),
        ("threshold", pa.int64()),
        ("projected_min", pa.float64()),
        ("crosses_on", pa.date32()),
        ("days_of_cover", pa.float64()),
        ("suggested_order", pa.int64()),
    ]
)


@dataclass(frozen=True)
class StockPosition:
    """A product's latest stock count and replenishment terms."""

    product_key: str
    title: str | None
    on_hand: int
    lead_time_days: int
    safety_stock: int


@dataclass(frozen=True)
class StockWarning:
    product_key: str
    title: str | None
    on_hand: int
    lead_time_days: int
    threshold: int
    projected_min: float
    crosses_on: date
    days_of_cover: float | None
    suggested_order: int


def _path(forecast: NDArray[np.float64], days: int) -> NDArray[np.float64]:
    """Daily demand for ``days`` days: the forecast, then its mean."""
    rate = float(forecast.mean()) if forecast.size else 0.0
    if days <= forecast.size:
        return forecast[:days]
    return np.concatenate([forecast, np.full(days - forecast.size, rate)])


def _days_of_cover(on_hand: int, forecast: NDArray[np.float64]) -> float | None:
    if on_hand <= 0:
        return 0.0
    path = _path(forecast, COVER_CAP_DAYS)
    used = np.cumsum(path)
    day = int(np.searchsorted(used, on_hand, side="left"))
    if day >= path.size:
        return None
    before = float(used[day - 1]) if day > 0 else 0.0
    return day + (on_hand - before) / float(path[day])


def assess(position: StockPosition, forecast: NDArray[np.float64], first_day: date) -> StockWarning | None:
    """The warning for one product, or None when its projected stock stays at or above the threshold.

    ``forecast`` holds the daily demand forecasts from ``first_day`` (the as-of day) on.
    """
    lead = position.lead_time_days
    projected = position.on_hand - np.concatenate([[0.0], np.cumsum(_path(forecast, lead))])
    below = np.flatnonzero(projected < position.safety_stock)
    if below.size == 0:
        return None
    crossing = int(below[0])
    horizon = _path(forecast, lead + REVIEW_DAYS).sum()
    order = max(0.0, horizon + position.safety_stock - position.on_hand)
    return StockWarning(
        product_key=position.product_key,
        title=position.title,
        on_hand=position.on_hand,
        lead_time_days=lead,
        threshold=position.safety_stock,
        projected_min=float(projected[-1]),
        crosses_on=first_day + timedelta(days=max(crossing - 1, 0)),
        days_of_cover=_days_of_cover(position.on_hand, forecast),
        suggested_order=math.ceil(order - 1e-9),
    )


def warn_all(positions: list[StockPosition], forecasts: Mapping[str, NDArray[np.float64]], first_day: date) -> pa.Table:
    """Warnings of every position (products without a forecast have zero demand), earliest crossing first."""
    none = np.zeros(0)
    found = [w for p in positions if (w := assess(p, forecasts.get(p.product_key, none), first_day)) is not None]
    found.sort(key=lambda w: (w.crosses_on, w.days_of_cover if w.days_of_cover is not None else math.inf))
    columns = {name: [getattr(w, name) for w in found] for name in WARNING_SCHEMA.names}
    return pa.table(columns, schema=WARNING_SCHEMA)
