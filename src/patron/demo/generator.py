r"""The deterministic demo shop: members, catalogue, orders and clickstream.

``generate_shop(members, seed)`` draws a complete shop with one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments always
give identical frames. Every step is vectorised (NumPy, Polars): a million
members (5.3 million orders, 17 million order lines, 20 million events)
take about half a minute and 5 GB of memory on two cores.

Model
-----
Members
    Sign-ups are uniform in operational time (so they bunch in promotion
    windows too); 10 % of members never buy. Each member has a category
    taste ``theta_i ~ Dirichlet(c * base(gender, age))``
    (:data:`~patron.demo.members.TASTE_CONCENTRATION`).
Purchases
    Buyers order at sign-up, then follow a BG/NBD process in operational
    time: repeat orders at rate ``lambda_i ~ Gamma(r, alpha)`` while active,
    dropout with probability ``p_i ~ Beta(a, b)`` after each repeat order
    (true values :data:`BGNBD_R`, :data:`BGNBD_ALPHA`, :data:`BGNBD_A`,
    :data:`BGNBD_B`; rates per day). Cancelled orders are extra orders placed
    shortly before some completed ones, so completed orders alone follow the
    process. See :mod:`patron.demo.purchases`.
Seasonality
    Operational time warps calendar time through an intensity with mean 1:
    peaks on June 18 (618, window June 1-18) and November 11 (Double-11,
    window November 1-11), a lull before and a calm after each festival,
    busier weekends and evenings. See :mod:`patron.demo.seasonality`.
Baskets and promotions
    1-6 distinct products per order; category from the member's taste, then
    product by Zipf popularity within the category; in promotion windows
    percentage discounts and 满减 tiers (:data:`MANJIAN_TIERS`), outside them
    an occasional small coupon; a few percent of lines returned.
Clickstream
    Over the last :data:`EVENT_WINDOW_DAYS` days: a session per order (views,
    carts, one purchase event per bought product), research sessions before
    orders and browsing-only sessions. See :mod:`patron.demo.sessions`.
Inventory
    One stock count per product at closing time on the last day: lead time,
    safety stock and stock on hand scaled to the product's recent sales, with
    some products running low. See :mod:`patron.demo.inventory`.

Keys: members ``"1".."N"`` (source ids), products ``demo:P0001``, orders
``demo:O00000001`` and sessions ``demo:S000000001`` numbered in time order,
events ``demo:E0000000001`` in session order.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.demo import vocab
from patron.demo.catalog import Catalog, draw_catalog
from patron.demo.inventory import draw_inventory
from patron.demo.members import draw_members, members_frame
from patron.demo.purchases import (
    BGNBD_A,
    BGNBD_ALPHA,
    BGNBD_B,
    BGNBD_R,
    MANJIAN_TIERS,
    Lines,
    Orders,
    draw_lines,
    draw_orders,
)
from patron.demo.seasonality import Clock
from patron.demo.sessions import EVENT_TYPES, EVENT_WINDOW_DAYS, Events, draw_events
from patron.errors import ValidationError
from patron.ingest.contract import QUARANTINE_SCHEMA, ParsedBatch
from patron.progress import NullProgress, Progress

__all__ = [
    "BGNBD_A",
    "BGNBD_ALPHA",
    "BGNBD_B",
    "BGNBD_R",
    "EVENT_WINDOW_DAYS",
    "MANJIAN_TIERS",
    "SOURCE",
    "generate_shop",
]

SOURCE = "demo"
_CHANNELS = [channel for channel, _ in vocab.CHANNELS]
_EPOCH = datetime(1970, 1, 1)
# The import contract names the frames a batch may carry; inventory goes along where it is one of them.


def _keys(prefix: str, count: int, minimum_width: int) -> pl.Series:
    """Keys ``demo:<prefix><n>`` for n = 1..count, zero-padded to a common width."""
    width = max(minimum_width, len(str(count)))
    numbers = pl.Series(np.arange(1, count + 1, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return (f"{SOURCE}:{prefix}" + numbers).rename("")


def _instants(start_us: int, seconds: NDArray[np.int64]) -> pl.Series:
    return pl.Series(start_us + seconds * 1_000_000).cast(pl.Datetime("us"))


def _orders_frame(
    orders: Orders, lines: Lines, start_us: int, order_keys: pl.Series, member_ids: pl.Series
) -> pl.DataFrame:
    amount = np.add.reduceat(lines.amount_cents, lines.starts, dtype=np.int64)
    discount = np.add.reduceat(lines.discount_cents, lines.starts, dtype=np.int64)
    return pl.DataFrame(
        {
            "order_key": order_keys,
            "member_source_id": member_ids[orders.member],
            "ordered_at": _instants(start_us, orders.seconds),
            "status": pl.Series(["completed", "cancelled"])[orders.cancelled.astype(np.int64)],
            "channel": pl.Series(_CHANNELS)[orders.channel],
            "amount": amount / 100.0,
            "discount": discount / 100.0,
        }
    )


def _lines_frame(lines: Lines, catalog: Catalog, order_keys: pl.Series) -> pl.DataFrame:
    unit = catalog.price_cents[lines.product]
    return pl.DataFrame(
        {
            "order_key": order_keys[lines.order],
            "line_no": pl.Series(lines.line_no + np.int16(1)).cast(pl.Int32),
            "product_key": catalog.frame["product_key"][lines.product],
            "quantity": pl.Series(lines.quantity).cast(pl.Int64),
            "unit_price": unit / 100.0,
            "amount": lines.amount_cents / 100.0,
            "discount": lines.discount_cents / 100.0,
            "returned": lines.returned,
        }
    )


def _events_frame(events: Events, catalog: Catalog, start_us: int, member_ids: pl.Series) -> pl.DataFrame:
    sessions = int(events.session.max()) + 1 if events.session.size else 0
    return pl.DataFrame(
        {
            "event_key": _keys("E", events.kind.size, 10),
            "member_source_id": member_ids[events.member],
            "session_id": _keys("S", sessions, 9)[events.session],
            "product_key": catalog.frame["product_key"][events.product],
            "category": pl.Series(vocab.CATEGORIES)[catalog.category[events.product]],
            "event_type": pl.Series(EVENT_TYPES)[events.kind],
            "occurred_at": _instants(start_us, events.seconds),
            "channel": pl.Series(_CHANNELS)[events.channel],
        }
    )


def generate_shop(
    members: int,
    seed: int,
    *,
    start: date = date(2024, 1, 1),
    end: date = date(2025, 12, 31),
    event_window_days: int | None = EVENT_WINDOW_DAYS,
    progress: Progress = NullProgress(),  # noqa: B008
) -> ParsedBatch:
    """Generate a demo shop as a batch for :func:`patron.ingest.service.import_batch`.

    Parameters
    ----------
    members
        Number of members (at least 1); products scale with its square root.
    seed
        Seed of the random generator: equal seeds give identical frames.
    start, end
        First and last calendar day of the shop's history (inclusive).
    event_window_days
        Days at the end of the period covered by the clickstream; ``None``
        covers the whole period (about eight events per order line).
    progress
        Receives one stage per generation step.

    Returns
    -------
    ParsedBatch
        Source ``"demo"``, primary entity ``order_lines``, no quarantine,
        one stock count per product (``inventory``); ``notes`` records the
        arguments and the true purchase-process parameters.

    """
    if members < 1:
        raise ValidationError("a demo shop needs at least one member", field="members")
    if end < start:
        raise ValidationError("the demo period ends before it starts", field="end")
    if event_window_days is not None and event_window_days < 1:
        raise ValidationError("the event window must be at least one day", field="event_window_days")
    rng = np.random.default_rng(seed)
    clock = Clock.build(start, end)
    start_us = int((datetime(start.year, start.month, start.day) - _EPOCH).total_seconds()) * 1_000_000

    progress.stage("demo: members and catalogue", None)
    people = draw_members(rng, members, clock.total, start)
    catalog = draw_catalog(rng, members)
    progress.stage("demo: orders", None)
    orders, signup = draw_orders(rng, people, clock)
    lines = draw_lines(rng, orders, people, catalog)
    progress.stage("demo: sessions", None)
    events = draw_events(rng, orders, lines, people, signup, catalog, clock, event_window_days)
    progress.stage("demo: inventory", None)
    stock = draw_inventory(rng, orders, lines, catalog, clock, end)

    # Build the frames one by one, dropping the arrays each one consumed.
    progress.stage("demo: frames", None)
    member_ids = pl.Series(np.arange(1, members + 1, dtype=np.int64)).cast(pl.String)
    members_out = members_frame(people, member_ids, start_us + signup * 1_000_000)
    del people, signup
    order_keys = _keys("O", orders.member.size, 8)
    orders_out = _orders_frame(orders, lines, start_us, order_keys, member_ids)
    order_lines = _lines_frame(lines, catalog, order_keys)
    del orders, lines, order_keys
    events_out = _events_frame(events, catalog, start_us, member_ids)
    del events
    events_from = start
    if event_window_days is not None:
        events_from = max(start, date.fromordinal(end.toordinal() - event_window_days + 1))
    notes: dict[str, Any] = {
        "generator": "patron.demo",
        "members": members,
        "seed": seed,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "events_from": events_from.isoformat(),
        "bgnbd": {"r": BGNBD_R, "alpha": BGNBD_ALPHA, "a": BGNBD_A, "b": BGNBD_B, "time_unit": "day"},
    }
    return ParsedBatch(
        source=SOURCE,
        rows_read=order_lines.height,
        primary="order_lines",
        quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA),
        members=members_out,
        products=catalog.frame,
        orders=orders_out,
        order_lines=order_lines,
        events=events_out,
        notes=notes,
        inventory=stock,
    )
