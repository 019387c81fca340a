"""RFM profiles and segments, written once in Ibis for any warehouse engine.

Definitions (identical to the reference values shipped with the data sets):

- recency  = whole days (floor) from the member's last completed order to the as-of instant;
- frequency = distinct completed orders; cancelled orders never count;
- monetary = sum of the amounts of those orders' lines that were not returned;
- scores follow pandas ``qcut``: edges at the linearly interpolated 0/20/40/60/80/100 %
  quantiles, bins closed on the right, the first including the minimum.
  R bins recency, reversed (5 = most recent); M bins monetary; F bins the
  frequency rank in which equal frequencies are ordered by the source's
  customer-id order (pandas ``rank(method="first")`` over members sorted by id).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

__all__ = [
    "LIFECYCLE_STAGES",
    "QUANTILES",
    "SEGMENTS",
    "lifecycle_of",
    "order_values",
    "rfm_profiles",
    "score_edges",
    "segment_of",
]

QUANTILES = (0.2, 0.4, 0.6, 0.8)

# Lifecycle stages, with W = LIFECYCLE_WINDOW_DAYS before as-of as the "current" window:
# new (first order in the current window), active (ordered in the current and the previous window),
# returning (ordered now, not in the previous window, but in the 3 W before it), resurrecting (ordered
# now after more than 4 W without an order), dormant (no order in the current window, last one less than
# DORMANT_AFTER_DAYS ago), churned (last order DORMANT_AFTER_DAYS or more ago).
LIFECYCLE_WINDOW_DAYS = 30
DORMANT_AFTER_DAYS = 180
LIFECYCLE_STAGES = ("new", "active", "returning", "resurrecting", "dormant", "churned")

# (segment, R scores, F scores), checked in this order.
SEGMENTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("hibernating", (1, 2), (1, 2)),
    ("at_risk", (1, 2), (3, 4)),
    ("cant_lose", (1, 2), (5,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("need_attention", (3,), (3,)),
    ("loyal_customers", (3, 4), (4, 5)),
    ("promising", (4,), (1,)),
    ("new_customers", (5,), (1,)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("champions", (5,), (4, 5)),
)


def order_values(lines: ir.Table) -> ir.Table:
    """Per order: the amount of its lines that were not returned, and its line count."""
    return lines.group_by("order_key").aggregate(
        value=lines.amount.sum(where=~lines.returned).fill_null(0.0), lines=lines.count()
    )


def _ordered_between(ordered_at: ir.TimestampColumn, as_of: datetime, days_from: int, days_to: int) -> ir.IntegerScalar:
    """Number of orders placed from ``days_to`` up to ``days_from`` days before ``as_of``."""
    inside = (ordered_at >= as_of - timedelta(days=days_to)) & (ordered_at < as_of - timedelta(days=days_from))
    return ibis.ifelse(inside, 1, 0).sum()


def lifecycle_of(
    days_since_first: ir.IntegerValue, recency_days: ir.IntegerValue, previous: ir.IntegerValue, before: ir.IntegerValue
) -> ir.StringValue:
    """The lifecycle stage (see LIFECYCLE_STAGES) from the member's order history around ``as_of``."""
    window = LIFECYCLE_WINDOW_DAYS
    current = recency_days < window
    return ibis.cases(
        (days_since_first < window, "new"),
        (current & (previous > 0), "active"),
        (current & (before > 0), "returning"),
        (current, "resurrecting"),
        (recency_days < DORMANT_AFTER_DAYS, "dormant"),
        else_="churned",
    ).cast("string")


def _raw_rfm(orders: ir.Table, values: ir.Table, member_order: ir.Table, as_of: datetime) -> ir.Table:
    done = orders.filter((orders.status == "completed") & orders.member_key.notnull() & (orders.ordered_at < as_of))
    joined = done.left_join(values, "order_key").select(
        done.member_key, done.order_key, done.ordered_at, value=values.value.fill_null(0.0)
    )
    as_of_seconds = ibis.literal(as_of).epoch_seconds()
    window = LIFECYCLE_WINDOW_DAYS
    per_member = joined.group_by("member_key").aggregate(
        first_order_at=joined.ordered_at.min(),
        last_order_at=joined.ordered_at.max(),
        frequency=joined.count(),  # order keys are unique (natural key), so no DISTINCT needed
        monetary=joined.value.sum(),
        previous=_ordered_between(joined.ordered_at, as_of, window, 2 * window),
        before=_ordered_between(joined.ordered_at, as_of, 2 * window, 5 * window),
    )
    days = {
        name: ((as_of_seconds - per_member[column].epoch_seconds()) / 86400).floor().cast("int64")
        for name, column in (("recency_days", "last_order_at"), ("days_since_first", "first_order_at"))
    }
    per_member = per_member.mutate(**days)
    per_member = per_member.mutate(
        lifecycle=lifecycle_of(
            per_member.days_since_first, per_member.recency_days, per_member.previous, per_member.before
        )
    )
    ranked = per_member.left_join(member_order, "member_key").select(
        per_member, source_rank=member_order.source_rank.fill_null(2**62)
    )
    order = [ranked.frequency, ranked.source_rank, ranked.member_key]
    return ranked.mutate(frequency_rank=(ibis.row_number().over(order_by=order) + 1).cast("float64"))


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's linear interpolation, operation for operation, so edges are
    # bit-identical to pandas ``quantile`` (and so to ``qcut``).
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _edges(raw: ir.Table, column: str, n: int) -> list[float]:
    """The 0/20/40/60/80/100 % quantiles of ``column``, interpolated like numpy."""
    positions = [q * (n - 1) for q in (0.0, *QUANTILES, 1.0)]
    needed = sorted({int(p) for p in positions} | {min(int(p) + 1, n - 1) for p in positions})
    ranked = raw.select(value=raw[column].cast("float64"), pos=ibis.row_number().over(order_by=raw[column]))
    picked = ranked.filter(ranked.pos.isin(needed)).to_pyarrow().to_pylist()
    value_at = {int(row["pos"]): float(row["value"]) for row in picked}
    return [_lerp(value_at[int(p)], value_at[min(int(p) + 1, n - 1)], p - int(p)) for p in positions]


def score_edges(raw: ir.Table) -> dict[str, list[float]]:
    """The qcut edges of recency, frequency rank and monetary (empty if no members)."""
    n = int(raw.count().execute())
    if n == 0:
        return {}
    return {
        "r": _edges(raw, "recency_days", n),
        "f": _edges(raw, "frequency_rank", n),
        "m": _edges(raw, "monetary", n),
    }


def _bin(column: ir.NumericValue, edges: list[float]) -> ir.IntegerValue:
    # Right-closed bins; values at or below the first inner edge fall in bin 1.
    case = ibis.cases(
        (column <= edges[1], 1),
        (column <= edges[2], 2),
        (column <= edges[3], 3),
        (column <= edges[4], 4),
        else_=5,
    )
    return case.cast("int8")


def segment_of(r: ir.IntegerValue, f: ir.IntegerValue) -> ir.StringValue:
    """The R x F segment name."""
    branches = [(r.isin(list(rs)) & f.isin(list(fs)), name) for name, rs, fs in SEGMENTS]
    return ibis.cases(*branches, else_=ibis.null(str)).cast("string")


@contextmanager
def rfm_profiles(orders: ir.Table, values: ir.Table, member_order: ir.Table, as_of: datetime) -> Iterator[ir.Table]:
    """Per-member recency, frequency, monetary, scores and segment.

    ``values`` is :func:`order_values` of the order lines. A context manager:
    the per-member figures are materialised once (they are scanned four
    times) and released on exit, so use the result inside the ``with``.
    """
    with _raw_rfm(orders, values, member_order, as_of).cache() as raw:
        yield _scored(raw)


def _scored(raw: ir.Table) -> ir.Table:
    edges = score_edges(raw)
    if edges:
        scored = raw.mutate(
            r_score=(6 - _bin(raw.recency_days, edges["r"])).cast("int8"),
            f_score=_bin(raw.frequency_rank, edges["f"]),
            m_score=_bin(raw.monetary, edges["m"]),
        )
    else:  # no member has an order: an empty table of the same shape
        none = ibis.literal(None, "int8")
        scored = raw.mutate(r_score=none, f_score=none, m_score=none)
    return scored.mutate(segment=segment_of(scored.r_score, scored.f_score)).select(
        "member_key",
        "recency_days",
        "frequency",
        "monetary",
        "first_order_at",
        "last_order_at",
        "r_score",
        "f_score",
        "m_score",
        "segment",
        "lifecycle",
    )
