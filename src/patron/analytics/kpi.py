"""Shop KPIs for any period and granularity, written once in Ibis.

Over completed orders (cancelled ones never count) placed in ``[start, end)``:

- ``gmv``: sum of order amounts, guest orders included, returns not deducted;
- ``orders``: number of orders; ``aov`` = gmv / orders;
- ``buyers``: distinct members with an order in the bucket (guests cannot be told apart);
- ``repurchase_rate``: share of the bucket's buyers with two or more orders in it;
- ``new_buyers``: buyers whose first completed order ever falls in the bucket;
  ``returning_buyers`` = buyers - new_buyers.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

import ibis
import ibis.expr.types as ir

__all__ = ["GRANULARITIES", "Granularity", "kpi_table"]

Granularity = Literal["day", "week", "month", "quarter", "year", "total"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month", "quarter", "year", "total")
_UNITS = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}


def _bucket(ts: ir.TimestampValue, granularity: Granularity, start: date) -> ir.TimestampValue:
    if granularity == "total":
        return ibis.literal(datetime.combine(start, time()))
    return ts.truncate(_UNITS[granularity])


def kpi_table(orders: ir.Table, start: date, end: date, granularity: Granularity) -> ir.Table:
    """One row per bucket (``period``) with the KPIs above, ordered by period."""
    lo, hi = datetime.combine(start, time()), datetime.combine(end, time())
    done = orders.filter(orders.status == "completed")
    firsts = done.filter(done.member_key.notnull()).group_by("member_key").aggregate(first_at=done.ordered_at.min())
    window = done.filter((done.ordered_at >= lo) & (done.ordered_at < hi))
    window = window.mutate(period=_bucket(window.ordered_at, granularity, start))
    totals = window.group_by("period").aggregate(gmv=window.amount.sum(), orders=window.count())
    members = window.filter(window.member_key.notnull())
    per_member = members.group_by(["period", "member_key"]).aggregate(n=members.count())
    per_member = per_member.join(firsts, "member_key")
    is_new = _bucket(per_member.first_at, granularity, start) == per_member.period
    if granularity == "total":
        is_new = (per_member.first_at >= lo) & (per_member.first_at < hi)
    buyers = per_member.group_by("period").aggregate(
        buyers=per_member.count(),
        repeat_buyers=ibis.ifelse(per_member.n >= 2, 1, 0).sum(),
        new_buyers=ibis.ifelse(is_new, 1, 0).sum(),
    )
    joined = totals.left_join(buyers, "period").select(
        totals.period,
        totals.gmv,
        totals.orders,
        buyers=buyers.buyers.fill_null(0),
        repeat_buyers=buyers.repeat_buyers.fill_null(0),
        new_buyers=buyers.new_buyers.fill_null(0),
    )
    return joined.mutate(
        aov=joined.gmv / joined.orders,
        returning_buyers=joined.buyers - joined.new_buyers,
        repurchase_rate=ibis.cases(
            (joined.buyers > 0, joined.repeat_buyers.cast("float64") / joined.buyers), else_=0.0
        ),
    ).order_by("period")
