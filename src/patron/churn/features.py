"""Behaviour features and churn labels at a cut-off, written once in Ibis for any warehouse engine.

Only orders placed strictly before the cut-off ``T`` enter the features, so orders at or after it can never
change them. A member is described when they have at least one completed order before ``T``. Definitions
(calendar days, completed orders unless said otherwise; "value" is the amount of an order's lines that were
not returned, as in RFM):

==================== =====================================================================================
``recency_days``     whole days (floor) from the last order to ``T``
``tenure_days``      whole days (floor) from the first order to ``T``
``orders``           number of orders
``purchase_days``    distinct calendar days with an order
``monetary``         total value
``avg_order_value``  ``monetary / orders``
``orders_90d``       orders in the last 90 days before ``T``
``orders_trend``     ``orders_90d`` minus the orders of the 90 days before those
``spend_90d``        value of the last 90 days
``spend_trend``      ``(s1 - s0) / (s1 + s0)`` of the value of the last 90 days (s1) and the 90 before (s0);
                     0 when both are 0; from -1 (stopped) to 1 (new)
``mean_interval``    mean days between consecutive purchase days; missing for a single purchase day
``last_interval``    days between the last two purchase days; missing for a single purchase day
``recency_ratio``    ``recency_days / mean_interval``: how overdue the member is by their own rhythm
``categories``       distinct product categories bought (returned lines count, cancelled orders do not)
``return_share``     returned lines / lines
``discount_share``   discount / gross (``orders.discount / (orders.amount + orders.discount)``)
``cancel_share``     cancelled orders / all orders (cancelled ones included)
==================== =====================================================================================

The label for cut-off ``T`` and horizon ``H``: the member, having bought before ``T``, makes no completed
order in ``[T, T + H)``.

Cut-offs are midnights: the order history is first summarised per member and calendar day (once, then
cached), and every cut-off reads that summary.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final

import ibis
import ibis.expr.types as ir

from patron.churn.facts import OrderFacts, cached_order_facts, order_facts
from patron.errors import ValidationError

__all__ = [
    "FEATURES",
    "MISSING_CREDIT",
    "TREND_DAYS",
    "OrderFacts",
    "cached_order_facts",
    "churn_labels",
    "member_features",
    "order_facts",
]

FEATURES: Final = (
    "recency_days",
    "tenure_days",
    "orders",
    "purchase_days",
    "monetary",
    "avg_order_value",
    "orders_90d",
    "orders_trend",
    "spend_90d",
    "spend_trend",
    "mean_interval",
    "last_interval",
    "recency_ratio",
    "categories",
    "return_share",
    "discount_share",
    "cancel_share",
)
"""Stable feature identifiers, also the reason codes the console translates."""

MISSING_CREDIT: Final = {
    "mean_interval": "purchase_days",
    "last_interval": "purchase_days",
    "recency_ratio": "purchase_days",
}
"""Interval features are missing when a member bought on a single day; their effect goes to that feature."""

TREND_DAYS: Final = 90
_DAY = 86400


def _require_midnight(cut_off: datetime) -> None:
    if cut_off.time() != time() or cut_off.tzinfo is not None:
        raise ValidationError(f"a cut-off is a naive midnight, not {cut_off.isoformat()}", field="cut_off")


def _days_between(later: ir.Value, earlier: ir.Value) -> ir.FloatingValue:
    return (later.epoch_seconds() - earlier.epoch_seconds()) / _DAY


def _per_member(days: ir.Table, cut_off: datetime) -> ir.Table:
    before = days.filter(days.day < cut_off)
    recent = before.day >= cut_off - timedelta(days=TREND_DAYS)
    previous = (before.day >= cut_off - timedelta(days=2 * TREND_DAYS)) & ~recent
    return before.group_by("member_key").aggregate(
        orders=before.orders.sum(),
        purchase_days=before.count(),
        first_at=before.first_at.min(),
        last_at=before.last_at.max(),
        first_day=before.day.min().epoch_seconds(),
        last_day=before.day.max().epoch_seconds(),
        # previous_day grows with the day, so its maximum is the purchase day before the last one
        previous_day=before.previous_day.max(),
        monetary=before.value.sum(),
        orders_90d=before.orders.sum(where=recent).fill_null(0),
        orders_prev=before.orders.sum(where=previous).fill_null(0),
        spend_90d=before.value.sum(where=recent).fill_null(0.0),
        spend_prev=before.value.sum(where=previous).fill_null(0.0),
        lines=before.lines.sum(),
        returned_lines=before.returned_lines.sum(),
        discount=before.discount.sum(),
        gross=before.gross.sum(),
        category_bits=before.category_bits.bit_or(),
    )


def member_features(facts: OrderFacts, cut_off: datetime) -> ir.Table:
    """One row per member with a completed order before ``cut_off``: ``member_key`` and :data:`FEATURES`.

    Also ``first_day`` and ``last_day`` (epoch seconds of the first and last purchase days), which the
    BG/NBD baseline reads. ``cut_off`` must be a midnight.
    """
    _require_midnight(cut_off)
    per = _per_member(facts.days, cut_off)
    cancels = facts.cancellations.filter(facts.cancellations.day < cut_off)
    cancels = cancels.group_by("member_key").aggregate(cancelled=cancels.cancelled.sum())
    with_cancels = per.left_join(cancels, "member_key").select(per, cancelled=cancels.cancelled.fill_null(0))
    return _derived(_with_categories(with_cancels, facts, cut_off), cut_off)


def _with_categories(per: ir.Table, facts: OrderFacts, cut_off: datetime) -> ir.Table:
    """Add ``categories_n``: distinct categories bought before the cut-off."""
    if facts.first_in_category is None:
        assert facts.categories is not None
        bits = per.category_bits
        count = sum(((bits >> i) & 1 for i in range(len(facts.categories))), ibis.literal(0, "int64"))
        return per.mutate(categories_n=count)
    first = facts.first_in_category.filter(facts.first_in_category.first_at < cut_off)
    cats = first.group_by("member_key").aggregate(categories=first.count())
    return per.left_join(cats, "member_key").select(per, categories_n=cats.categories.fill_null(0))


def _derived(t: ir.Table, cut_off: datetime) -> ir.Table:
    end = ibis.literal(cut_off)
    recency = _days_between(end, t.last_at).floor()
    repeat = t.purchase_days > 1
    mean_interval = ibis.ifelse(repeat, (t.last_day - t.first_day) / _DAY / (t.purchase_days - 1), ibis.null())
    shift = t.spend_90d + t.spend_prev
    return t.select(
        "member_key",
        recency_days=recency.cast("float64"),
        tenure_days=_days_between(end, t.first_at).floor().cast("float64"),
        orders=t.orders.cast("float64"),
        purchase_days=t.purchase_days.cast("float64"),
        monetary=t.monetary.cast("float64"),
        avg_order_value=(t.monetary / t.orders).cast("float64"),
        orders_90d=t.orders_90d.cast("float64"),
        orders_trend=(t.orders_90d - t.orders_prev).cast("float64"),
        spend_90d=t.spend_90d.cast("float64"),
        spend_trend=ibis.ifelse(shift > 0, (t.spend_90d - t.spend_prev) / shift, 0.0).cast("float64"),
        mean_interval=mean_interval.cast("float64"),
        last_interval=ibis.ifelse(repeat, (t.last_day - t.previous_day) / _DAY, ibis.null()).cast("float64"),
        recency_ratio=ibis.ifelse(repeat, recency / mean_interval, ibis.null()).cast("float64"),
        categories=t.categories_n.cast("float64"),
        return_share=ibis.ifelse(t.lines > 0, t.returned_lines / t.lines, 0.0).cast("float64"),
        discount_share=ibis.ifelse(t.gross > 0, t.discount / t.gross, 0.0).cast("float64"),
        cancel_share=(t.cancelled / (t.orders + t.cancelled)).cast("float64"),
        first_day=t.first_day.cast("float64"),
        last_day=t.last_day.cast("float64"),
    )


def churn_labels(facts: OrderFacts, cut_off: datetime, horizon_days: int) -> ir.Table:
    """``member_key`` and ``churned`` (1 or 0) of every member with a completed order before ``cut_off``.

    ``churned`` is 1 when the member makes no completed order in ``[cut_off, cut_off + horizon_days)``.
    """
    _require_midnight(cut_off)
    end = cut_off + timedelta(days=horizon_days)
    days = facts.days.filter(facts.days.day < end)
    per = days.group_by("member_key").aggregate(
        before=ibis.ifelse(days.day < cut_off, 1, 0).sum(), inside=ibis.ifelse(days.day >= cut_off, 1, 0).sum()
    )
    per = per.filter(per.before > 0)
    return per.select("member_key", churned=ibis.ifelse(per.inside > 0, 0, 1))
