"""Interactions computed in the warehouse: who did what with which product, weighted and decayed.

Every signal becomes a row ``(member, product, instant, weight)``:

- a line of a *completed* order of a member weighs ``weights["purchase"]``; a
  returned line weighs minus that (it never counts as a purchase); cancelled
  orders and guest orders are left out; a line counts once whatever its
  quantity (a wholesaler's 48 units are not 48 purchases);
- an event of the events table weighs ``weights[event_type]`` (types without a
  weight are ignored). A ``purchase`` *event* is the click-stream trace of an
  order, so it counts only when the member has no completed order line of the
  same product within ``purchase_match_hours`` of it; shops that send both
  orders and purchase events are never counted twice, shops that only send
  events (Taobao) still get their purchases;
- with ``half_life_days`` set, a row of age ``a`` days (before ``as_of``) is
  multiplied by ``0.5 ** (a / half_life_days)``.

Rows are summed per member x product in the warehouse; pairs whose net is not
positive are dropped (a bought-and-returned product is a negative signal, not a
weak positive one). ``min_user_items`` / ``min_item_users`` then drop members
with too few distinct products and products with too few members, in one pass
(not iterated to a fixed point). The item universe is every product of the
products table, sorted by key, so cold products exist for content models and
serving rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from patron.recs.base import Interactions, ItemCatalog

__all__ = [
    "DEFAULT_WEIGHTS",
    "InteractionConfig",
    "build_interactions",
    "build_purchases",
    "build_sessions",
    "item_catalog",
    "weighted_signals",
]

DEFAULT_WEIGHTS: dict[str, float] = {"view": 1.0, "fav": 2.0, "cart": 3.0, "purchase": 4.0}
_DAY = 86400.0


class InteractionConfig(BaseModel):
    """How warehouse rows become interaction weights (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    half_life_days: float | None = Field(default=None, gt=0)
    lookback_days: int | None = Field(default=None, gt=0)
    min_user_items: int = Field(default=1, ge=1)
    min_item_users: int = Field(default=1, ge=1)
    purchase_match_hours: float = Field(default=24.0, ge=0)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {name!r} must be a finite number >= 0")
        if value.get("purchase", 0) <= 0:
            raise ValueError("the purchase weight must be positive")
        return value

    def weight(self, event_type: str) -> float:
        """The weight of one event of ``event_type`` (0 for types without one; ``returned`` is minus a purchase)."""
        if event_type == "returned":
            return -self.weights["purchase"]
        return float(self.weights.get(event_type, 0.0))


def _instant(as_of: date | datetime) -> datetime:
    return as_of if isinstance(as_of, datetime) else datetime.combine(as_of, time())


def _seconds(value: ir.TimestampValue) -> ir.FloatingValue:
    return value.epoch_seconds().cast("float64")


def _completed_lines(tables: Mapping[str, ir.Table], start: datetime | None, end: datetime) -> ir.Table:
    """(member_key, product_key, at, returned, order_key) of members' completed order lines in [start, end)."""
    orders, lines = tables["orders"], tables["order_lines"]
    keep = (orders.status == "completed") & orders.member_key.notnull() & (orders.ordered_at < end)
    if start is not None:
        keep &= orders.ordered_at >= start
    done = orders.filter(keep)
    joined = lines.filter(lines.product_key.notnull()).join(done, "order_key")
    return joined.select(
        member_key=joined.member_key,
        product_key=joined.product_key,
        at=joined.ordered_at,
        returned=joined.returned,
        order_key=joined.order_key,
    )


def _events(tables: Mapping[str, ir.Table], start: datetime | None, end: datetime, types: list[str]) -> ir.Table:
    events = tables["events"]
    keep = events.member_key.notnull() & events.product_key.notnull() & (events.occurred_at < end)
    keep &= events.event_type.isin(types)
    if start is not None:
        keep &= events.occurred_at >= start
    return events.filter(keep)


def _unmatched_purchase_events(events: ir.Table, lines: ir.Table, hours: float) -> ir.Table:
    """Purchase events with no completed order line of the same member and product within ``hours``."""
    bought = events.filter(events.event_type == "purchase")
    window = hours * 3600.0
    right = lines.select(m=lines.member_key, p=lines.product_key, s=_seconds(lines.at))
    # An equi-join on (member, product) first, then the time window: an anti-join carrying the window as a
    # residual condition is planned as a nested loop (every purchase event against every line).
    pairs = bought.join(right, [bought.member_key == right.m, bought.product_key == right.p])
    gap = _seconds(pairs.occurred_at) - pairs.s
    matched = pairs.filter((gap <= window) & (gap >= -window)).select("event_key").distinct()
    return bought.anti_join(matched, "event_key")


def weighted_signals(tables: Mapping[str, ir.Table], as_of: date | datetime, config: InteractionConfig) -> ir.Table:
    """Every signal as (member_key, product_key, seconds, weight) before ``as_of``, weights decayed."""
    end = _instant(as_of)
    start = None if config.lookback_days is None else end - timedelta(days=config.lookback_days)
    lines = _completed_lines(tables, start, end)
    purchase = config.weights["purchase"]
    from_lines = lines.select(
        "member_key",
        "product_key",
        seconds=_seconds(lines.at),
        weight=lines.returned.ifelse(-purchase, purchase).cast("float64"),
    )
    parts = [from_lines]
    types = [t for t, w in config.weights.items() if w > 0 and t != "purchase"]
    if "events" in tables:
        events = _events(tables, start, end, [*types, "purchase"])
        if types:
            plain = events.filter(events.event_type != "purchase")
            weight = ibis.cases(
                *((plain.event_type == t, ibis.literal(config.weights[t], "float64")) for t in types),
                else_=ibis.literal(0.0, "float64"),
            )
            parts.append(
                plain.select(
                    "member_key", "product_key", seconds=_seconds(plain.occurred_at), weight=weight.cast("float64")
                )
            )
        bought = _unmatched_purchase_events(events, lines, config.purchase_match_hours)
        parts.append(
            bought.select(
                "member_key",
                "product_key",
                seconds=_seconds(bought.occurred_at),
                weight=ibis.literal(purchase, "float64"),
            )
        )
    signals = ibis.union(*parts, distinct=False)
    if config.half_life_days is not None:
        age_days = (ibis.literal(_epoch(end)) - signals.seconds) / _DAY
        signals = signals.mutate(weight=signals.weight * (ibis.literal(0.5) ** (age_days / config.half_life_days)))
    return signals


def _epoch(value: datetime) -> float:
    """Seconds since the epoch; a naive timestamp is read as UTC, as the warehouse reads its naive timestamps."""
    if value.tzinfo is not None:
        return value.timestamp()
    return (value - datetime(1970, 1, 1)).total_seconds()


def _pairs(signals: ir.Table, config: InteractionConfig) -> ir.Table:
    """Net weight and last instant per member x product, positive nets only, minimum counts applied."""
    pairs = signals.group_by(["member_key", "product_key"]).aggregate(
        weight=signals.weight.sum(), seconds=signals.seconds.max()
    )
    pairs = pairs.filter(pairs.weight > 0)
    if config.min_user_items > 1:
        users = pairs.group_by("member_key").aggregate(n_items=pairs.count())
        users = users.filter(users.n_items >= config.min_user_items).select("member_key")
        pairs_by_user = pairs.semi_join(users, "member_key")
    else:
        pairs_by_user = pairs
    if config.min_item_users > 1:
        items = pairs.group_by("product_key").aggregate(n_users=pairs.count())
        items = items.filter(items.n_users >= config.min_item_users).select("product_key")
        pairs_by_user = pairs_by_user.semi_join(items, "product_key")
    return pairs_by_user


def item_catalog(products: ir.Table) -> ItemCatalog:
    """Every product, sorted by key, as an :class:`ItemCatalog`."""
    table = products.select("product_key", "title", "category", "brand", "price").order_by("product_key").to_pyarrow()
    return ItemCatalog(
        np.asarray(table.column("product_key").to_pylist(), dtype=str),
        np.asarray([t or "" for t in table.column("title").to_pylist()], dtype=object),
        np.asarray([c or "" for c in table.column("category").to_pylist()], dtype=object),
        np.asarray([b or "" for b in table.column("brand").to_pylist()], dtype=object),
        np.asarray([np.nan if p is None else p for p in table.column("price").to_pylist()], dtype=np.float64),
    )


def _index(rows: pa.Table, user_col: str, item_ids: np.ndarray[Any, Any], time_col: str) -> Interactions:
    users = np.asarray(rows.column(user_col).to_pylist(), dtype=str)
    items = np.asarray(rows.column("product_key").to_pylist(), dtype=str)
    user_ids, u_idx = np.unique(users, return_inverse=True)
    i_idx = np.searchsorted(item_ids, items)
    weights = rows.column("weight").to_numpy().astype(np.float32)
    times = rows.column(time_col).to_numpy().astype(np.float64)
    return Interactions.from_indices(user_ids, item_ids, u_idx, i_idx, weights, times)


def build_interactions(
    tables: Mapping[str, ir.Table], as_of: date | datetime, config: InteractionConfig | None = None
) -> tuple[Interactions, ItemCatalog]:
    """Members x products interactions before ``as_of`` and the catalog of every product.

    ``tables`` are the warehouse's Ibis tables (``orders``, ``order_lines``,
    ``products`` and, if present, ``events``). The weight of a pair is the sum
    of its decayed signals; its time is the last signal's instant (seconds since
    the epoch, naive timestamps read as UTC).
    """
    config = config or InteractionConfig()
    catalog = item_catalog(tables["products"])
    products = tables["products"].select(product_key=tables["products"].product_key)
    pairs = _pairs(weighted_signals(tables, as_of, config), config).semi_join(products, "product_key")
    rows = pairs.order_by(["member_key", "product_key"]).to_pyarrow()
    return _index(rows, "member_key", catalog.item_ids, "seconds"), catalog


def build_purchases(
    tables: Mapping[str, ir.Table], as_of: date | datetime, config: InteractionConfig | None = None
) -> Interactions:
    """How often each member bought each product before ``as_of``.

    A count of distinct orders, plus distinct days of purchase events that match
    no order (as in :func:`build_interactions`); returned lines are not
    purchases. No decay; the item universe is every product.
    """
    config = config or InteractionConfig()
    end = _instant(as_of)
    start = None if config.lookback_days is None else end - timedelta(days=config.lookback_days)
    lines = _completed_lines(tables, start, end)
    kept = lines.filter(~lines.returned)
    occasions = [kept.select("member_key", "product_key", occasion=kept.order_key, seconds=_seconds(kept.at))]
    if "events" in tables:
        bought = _unmatched_purchase_events(
            _events(tables, start, end, ["purchase"]), lines, config.purchase_match_hours
        )
        occasions.append(
            bought.select(
                "member_key",
                "product_key",
                occasion=ibis.literal("day:") + bought.occurred_at.date().cast("string"),
                seconds=_seconds(bought.occurred_at),
            )
        )
    all_occasions = ibis.union(*occasions, distinct=False)
    products = tables["products"].select(product_key=tables["products"].product_key)
    counts = (
        all_occasions.group_by(["member_key", "product_key"])
        .aggregate(weight=all_occasions.occasion.nunique().cast("float64"), seconds=all_occasions.seconds.max())
        .semi_join(products, "product_key")
    )
    rows = counts.order_by(["member_key", "product_key"]).to_pyarrow()
    item_ids = np.asarray(products.order_by("product_key").to_pyarrow().column("product_key").to_pylist(), dtype=str)
    return _index(rows, "member_key", item_ids, "seconds")


def build_sessions(
    tables: Mapping[str, ir.Table],
    as_of: date | datetime,
    config: InteractionConfig | None = None,
    *,
    gap_minutes: float = 30.0,
) -> Interactions:
    """Browsing sessions before ``as_of`` as an :class:`Interactions` whose "users" are sessions.

    One row per event (not summed), weighted by event type (no decay), with the
    event's instant as its time, in time order within a session. Events carry a
    ``session_id``; members' events without one are cut into sessions at gaps
    longer than ``gap_minutes`` (ids ``member:<member key>:<n>``). Anonymous
    events without a session id, and events of types without a weight, are left out.
    """
    config = config or InteractionConfig()
    end = _instant(as_of)
    start = None if config.lookback_days is None else end - timedelta(days=config.lookback_days)
    types = [t for t, w in config.weights.items() if w > 0]
    events = tables["events"]
    keep = events.product_key.notnull() & events.event_type.isin(types) & (events.occurred_at < end)
    keep &= events.session_id.notnull() | events.member_key.notnull()
    if start is not None:
        keep &= events.occurred_at >= start
    ev = events.filter(keep).select("session_id", "member_key", "product_key", "event_type", "occurred_at")
    given = ev.filter(ev.session_id.notnull())
    derived = _cut_sessions(ev.filter(ev.session_id.isnull()), gap_minutes)
    parts = [
        given.select(
            session=given.session_id, product_key=given.product_key, at=given.occurred_at, kind=given.event_type
        )
    ]
    parts.append(
        derived.select(
            session=derived.session, product_key=derived.product_key, at=derived.occurred_at, kind=derived.event_type
        )
    )
    rows = ibis.union(*parts, distinct=False)
    products = tables["products"].select(product_key=tables["products"].product_key)
    rows = rows.semi_join(products, "product_key")
    rows = rows.select("session", "product_key", "kind", seconds=_seconds(rows.at))
    table = rows.order_by(["session", "seconds", "product_key"]).to_pyarrow()
    # weights per type are applied here: a CASE of float literals comes back as NUMERIC from PostgreSQL
    weights = np.asarray([config.weight(k) for k in table.column("kind").to_pylist()], dtype=np.float64)
    table = table.append_column("weight", pa.array(weights, pa.float64()))
    item_ids = np.asarray(products.order_by("product_key").to_pyarrow().column("product_key").to_pylist(), dtype=str)
    return _index(table, "session", item_ids, "seconds")


def _cut_sessions(events: ir.Table, gap_minutes: float) -> ir.Table:
    """Number each member's events into sessions split at gaps longer than ``gap_minutes``."""
    window = ibis.window(group_by=events.member_key, order_by=[events.occurred_at, events.product_key])
    previous = events.occurred_at.lag().over(window)
    gap = _seconds(events.occurred_at) - _seconds(previous)
    starts = events.mutate(new=(previous.isnull() | (gap > gap_minutes * 60.0)).ifelse(1, 0).cast("int64"))
    numbered = starts.mutate(n=starts.new.cumsum().over(window))
    return numbered.mutate(
        session=ibis.literal("member:") + numbered.member_key + ibis.literal(":") + numbered.n.cast("string")
    )
