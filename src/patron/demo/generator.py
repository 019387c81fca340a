r"""The deterministic demo shop: members, catalogue, orders and clickstream.

``generate_shop(members, seed)`` draws a complete shop with one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments always
give identical frames. Every step is vectorised (NumPy, Polars): a million
members, about 17 million order lines, take a minute or two.

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
from patron.demo.catalog import draw_catalog
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
_EPOCH = datetime(1970, 1, 1)


def _keys(prefix: str, numbers: NDArray[np.int64], minimum_width: int) -> pl.Series:
    """``demo:<prefix>`` keys of 1-based numbers, zero-padded to a common width."""
    width = max(minimum_width, len(str(int(numbers.max())))) if numbers.size else minimum_width
    series = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return (f"{SOURCE}:{prefix}" + series).rename("")


def _instants(start_us: int, seconds: NDArray[np.int64]) -> pl.Series:
    return pl.Series(start_us + seconds * 1_000_000).cast(pl.Datetime("us"))


def _member_ids(member: NDArray[np.int64]) -> pl.Series:
    return pl.Series(member + 1).cast(pl.String)


def _orders_frame(orders: Orders, lines: Lines, start_us: int, order_keys: pl.Series) -> pl.DataFrame:
    amount = np.add.reduceat(lines.amount_cents, lines.starts)
    discount = np.add.reduceat(lines.discount_cents, lines.starts)
    return pl.DataFrame(
        {
            "order_key": order_keys,
            "member_source_id": _member_ids(orders.member),
            "ordered_at": _instants(start_us, orders.seconds),
            "status": pl.Series(["completed", "cancelled"])[orders.cancelled.astype(np.int64)],
            "channel": pl.Series([c for c, _ in vocab.CHANNELS])[orders.channel],
            "amount": amount / 100.0,
            "discount": discount / 100.0,
        }
    )


def _lines_frame(lines: Lines, order_keys: pl.Series, product_keys: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_key": order_keys[lines.order],
            "line_no": pl.Series(lines.line_no + 1).cast(pl.Int32),
            "product_key": product_keys[lines.product],
            "quantity": lines.quantity,
            "unit_price": lines.unit_cents / 100.0,
            "amount": lines.amount_cents / 100.0,
            "discount": lines.discount_cents / 100.0,
            "returned": lines.returned,
        }
    )


def _events_frame(events: Events, categories: NDArray[np.int64], start_us: int, product_keys: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_key": _keys("E", np.arange(1, events.kind.size + 1, dtype=np.int64), 10),
            "member_source_id": _member_ids(events.member),
            "session_id": _keys("S", events.session + 1, 9),
            "product_key": product_keys[events.product],
            "category": pl.Series(vocab.CATEGORIES)[categories[events.product]],
            "event_type": pl.Series(EVENT_TYPES)[events.kind.astype(np.int64)],
            "occurred_at": _instants(start_us, events.seconds),
            "channel": pl.Series([c for c, _ in vocab.CHANNELS])[events.channel],
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
        Source ``"demo"``, primary entity ``order_lines``, no quarantine;
        ``notes`` records the arguments and the true purchase-process
        parameters.
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

    progress.stage("demo: frames", None)
    product_keys = catalog.frame["product_key"]
    order_keys = _keys("O", np.arange(1, orders.member.size + 1, dtype=np.int64), 8)
    order_lines = _lines_frame(lines, order_keys, product_keys)
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
        members=members_frame(people, start_us + signup * 1_000_000),
        products=catalog.frame,
        orders=_orders_frame(orders, lines, start_us, order_keys),
        order_lines=order_lines,
        events=_events_frame(events, catalog.category, start_us, product_keys),
        notes=notes,
    )
