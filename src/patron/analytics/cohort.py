"""Acquisition cohorts and repurchase intervals, written once in Ibis.

Only completed orders of members count (cancelled orders and guest orders never do).

Retention (:func:`retention_table`):

- a member's **cohort** is the period (ISO week starting Monday, or calendar
  month) of their first completed order ever; only cohorts in ``[start, end)``
  are shown and only orders before ``end`` count;
- **period_index** p = whole periods from the cohort to the order's period
  (0 = the acquisition period);
- **cohort_size** = members acquired in the cohort;
- ``metric="members"``: ``value`` = members with a completed order in period p,
  ``retention`` = value / cohort_size;
- ``metric="revenue"``: ``value`` = the amount of the cohort's completed orders
  in period p, ``retention`` = value / the cohort's period-0 revenue;
- one row per cohort and every later period in which any member ordered, so a
  period in which a cohort did not buy shows 0.

Repurchase intervals (:func:`repurchase_intervals`, :func:`repurchase_percentiles`):
the gaps, in days (seconds / 86400), between each completed order of a member
and that member's previous completed order; a member with n orders gives n - 1
gaps. The histogram's bins are ``[lower, upper)`` with the last one open.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

import ibis
import ibis.expr.types as ir

__all__ = [
    "INTERVAL_EDGES",
    "CohortMetric",
    "CohortPeriod",
    "repurchase_intervals",
    "repurchase_percentiles",
    "retention_table",
]

CohortPeriod = Literal["week", "month"]
CohortMetric = Literal["members", "revenue"]
INTERVAL_EDGES: tuple[float, ...] = (0, 1, 7, 14, 30, 60, 90, 180, 365)
_UNITS = {"week": "W", "month": "M"}
_SECONDS_PER_DAY = 86400
_SECONDS_PER_WEEK = 7 * _SECONDS_PER_DAY


def _member_orders(orders: ir.Table) -> ir.Table:
    return orders.filter((orders.status == "completed") & orders.member_key.notnull())


def _index(cohort: ir.TimestampValue, period: ir.TimestampValue, unit: CohortPeriod) -> ir.IntegerValue:
    """Whole periods from ``cohort`` to ``period`` (both truncated to the unit)."""
    if unit == "month":
        months = (period.year() - cohort.year()) * 12 + (period.month() - cohort.month())
        return months.cast("int64")
    seconds = period.epoch_seconds() - cohort.epoch_seconds()
    return (seconds / _SECONDS_PER_WEEK).round().cast("int64")


def _activity(done: ir.Table, period: CohortPeriod, start: date | None, end: date | None) -> ir.Table:
    """Each member order with its cohort and period, restricted to the cohorts asked for."""
    firsts = done.group_by("member_key").aggregate(first_at=done.ordered_at.min())
    if start is not None:
        firsts = firsts.filter(firsts.first_at >= datetime.combine(start, time()))
    if end is not None:
        firsts = firsts.filter(firsts.first_at < datetime.combine(end, time()))
        done = done.filter(done.ordered_at < datetime.combine(end, time()))
    joined = done.join(firsts, "member_key")
    return joined.select(
        "member_key",
        "amount",
        cohort=joined.first_at.truncate(_UNITS[period]),
        period=joined.ordered_at.truncate(_UNITS[period]),
    )


def _grid(activity: ir.Table) -> ir.Table:
    """Every cohort crossed with every period at or after it in which anyone ordered."""
    sizes = activity.group_by("cohort").aggregate(cohort_size=activity.member_key.nunique())
    periods = activity.select("period").distinct()
    grid = sizes.cross_join(periods)
    return grid.filter(grid.period >= grid.cohort)


def retention_table(
    orders: ir.Table,
    *,
    period: CohortPeriod,
    metric: CohortMetric = "members",
    start: date | None = None,
    end: date | None = None,
) -> ir.Table:
    """Cohort x period index table as defined in the module docstring, ordered by cohort and index."""
    activity = _activity(_member_orders(orders), period, start, end)
    cells = activity.group_by(["cohort", "period"]).aggregate(
        members=activity.member_key.nunique(), revenue=activity.amount.sum()
    )
    grid = _grid(activity)
    joined = grid.left_join(cells, [grid.cohort == cells.cohort, grid.period == cells.period])
    value = cells[metric].cast("float64") if metric == "revenue" else cells.members.cast("int64")
    table = joined.select(
        grid.cohort,
        grid.period,
        period_index=_index(grid.cohort, grid.period, period),
        cohort_size=grid.cohort_size.cast("int64"),
        value=value.fill_null(0),
    )
    return _with_retention(table, metric).order_by(["cohort", "period_index"])


def _with_retention(table: ir.Table, metric: CohortMetric) -> ir.Table:
    if metric == "members":
        base: ir.NumericValue = table.cohort_size
    else:
        w = ibis.window(group_by=table.cohort, order_by=table.period_index)
        base = table.value.first().over(w)
    share = ibis.cases((base > 0, table.value.cast("float64") / base), else_=0.0)
    return table.mutate(retention=share)


def _gaps(orders: ir.Table) -> ir.Table:
    """Days between each completed member order and the member's previous one."""
    done = _member_orders(orders)
    w = ibis.window(group_by=done.member_key, order_by=[done.ordered_at, done.order_key])
    seconds = done.ordered_at.epoch_seconds() - done.ordered_at.lag().over(w).epoch_seconds()
    gaps = done.select(days=seconds.cast("float64") / _SECONDS_PER_DAY)
    return gaps.filter(gaps.days.notnull())


def repurchase_intervals(orders: ir.Table, *, edges: tuple[float, ...] = INTERVAL_EDGES) -> ir.Table:
    """Histogram of repurchase gaps, one row per bin (empty bins included).

    Columns: ``bin`` (0-based), ``lower_days``, ``upper_days`` (null for the
    last, open bin), ``intervals``, ``share`` and ``cumulative_share`` of all gaps.
    Gaps shorter than the first edge fall in no bin.
    """
    gaps = _gaps(orders)
    # A tiny bins table: typed columns on every engine (bare SQL literals such as 0.0 are NUMERIC on PostgreSQL).
    bins = ibis.memtable(
        {"bin": range(len(edges)), "lower_days": list(edges), "upper_days": [*edges[1:], None]},
        schema={"bin": "int64", "lower_days": "float64", "upper_days": "float64"},
    )
    inside = (gaps.days >= bins.lower_days) & (bins.upper_days.isnull() | (gaps.days < bins.upper_days))
    counts = bins.join(gaps, inside).group_by("bin").aggregate(intervals=gaps.days.count())
    joined = bins.left_join(counts, bins.bin == counts.bin)
    table = joined.select(bins, intervals=counts.intervals.fill_null(0).cast("int64"))
    return _with_shares(table)


def _with_shares(counts: ir.Table) -> ir.Table:
    total = counts.intervals.sum().over(ibis.window())
    running = counts.intervals.sum().over(ibis.window(order_by=counts.bin, preceding=None, following=0))

    def share(part: ir.IntegerValue) -> ir.FloatingValue:
        return ibis.cases((total > 0, part.cast("float64") / total), else_=0.0)

    return counts.mutate(share=share(counts.intervals), cumulative_share=share(running)).order_by("bin")


def repurchase_percentiles(orders: ir.Table, quantiles: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)) -> ir.Table:
    """One row: the number of gaps, their mean and interpolated percentiles ``p25``, ``p50``, ..."""
    gaps = _gaps(orders)
    metrics = {f"p{round(q * 100)}": gaps.days.quantile(q) for q in quantiles}
    return gaps.aggregate(intervals=gaps.count(), mean_days=gaps.days.mean(), **metrics)
