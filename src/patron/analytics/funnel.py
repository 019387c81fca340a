"""Ordered conversion funnels over behaviour events, written once in Ibis.

A funnel is a list of steps (an event type, optionally narrowed to a category,
channel or product). Per member (events without a member key are ignored):

- **entry**: ``t1`` = the member's first step-1 event with ``start <= t < end``;
- **strict order** (default): ``tk`` = the first step-k event with
  ``t(k-1) < tk <= t1 + window``; a member reaches step k when ``t2..tk`` all
  exist, so each step comes strictly after the one matched before it;
- **any order**: ``tk`` = the first step-k event with ``t1 < tk <= t1 + window``,
  found for each step independently; a member reaches step k when ``t2..tk``
  all exist, and reaches it at ``max(t2..tk)``;
- **conversion** is the member's furthest step; conversions may fall after
  ``end`` (only the entry has to be in range);
- **exclusions**: a member with an exclusion event strictly between ``t1`` and
  the time of their conversion leaves the funnel entirely (counts at no step);
  a member who never passed step 1 cannot be excluded;
- **breakdown**: the value of an events column on the member's entry event (the
  smallest value if several step-1 events share ``t1``); to break down by a
  member attribute, join it onto the events first.

Output: one row per (breakdown, step) with ``members`` reaching the step,
``conversion_from_previous`` and ``conversion_from_first`` (shares of members,
0 when the denominator is 0) and ``median_seconds`` from entry to reaching the
step (0 for step 1, null when nobody reached it).

Example: steps view -> cart -> purchase, window 1 day. A member who views at
10:00, carts at 10:05 and buys the next day at 09:00 reaches all three steps
(both within 24 h of 10:00); had they bought at 10:01 the next day, they would
stop at cart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir

from patron.errors import ValidationError

__all__ = ["FunnelOrder", "Step", "funnel_table"]

FunnelOrder = Literal["strict", "any"]
ALL = "all"  # the breakdown value when there is no breakdown


@dataclass(frozen=True)
class Step:
    """One funnel step: an event type, optionally narrowed by category, channel or product."""

    event_type: str
    category: str | None = None
    channel: str | None = None
    product_key: str | None = None

    @property
    def name(self) -> str:
        """``cart`` or ``cart[category=42]``: the step as shown in reports."""
        narrowed = [f"{key}={value}" for key, value in self._filters()]
        return f"{self.event_type}[{','.join(narrowed)}]" if narrowed else self.event_type

    def _filters(self) -> list[tuple[str, str]]:
        pairs = (("category", self.category), ("channel", self.channel), ("product_key", self.product_key))
        return [(key, value) for key, value in pairs if value is not None]

    def matches(self, events: ir.Table) -> ir.BooleanValue:
        """The condition selecting this step's events."""
        condition = events.event_type == self.event_type
        for key, value in self._filters():
            condition &= events[key] == value
        return condition


def _instant(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time())


def _entries(events: ir.Table, first: Step, breakdown: str | None, start: date | None, end: date | None) -> ir.Table:
    """Per member: entry time ``t1`` and the breakdown value of the entry event."""
    chosen = events.filter(first.matches(events) & events.member_key.notnull())
    if start is not None:
        chosen = chosen.filter(chosen.occurred_at >= _instant(start))
    if end is not None:
        chosen = chosen.filter(chosen.occurred_at < _instant(end))
    firsts = chosen.group_by("member_key").aggregate(t1=chosen.occurred_at.min())
    if breakdown is None:
        return firsts.mutate(breakdown=ibis.literal(ALL))
    at_entry = chosen.join(firsts, [chosen.member_key == firsts.member_key, chosen.occurred_at == firsts.t1])
    return at_entry.group_by([chosen.member_key, firsts.t1]).aggregate(breakdown=chosen[breakdown].cast("string").min())


def _first_after(events: ir.Table, step: Step, members: ir.Table, after: str, window: timedelta, name: str) -> ir.Table:
    """Per member: the first event of ``step`` after column ``after`` and within the window."""
    chosen = events.filter(step.matches(events))
    joined = chosen.join(members, chosen.member_key == members.member_key)
    joined = joined.filter((chosen.occurred_at > members[after]) & (chosen.occurred_at <= members.t1 + window))
    return joined.group_by(chosen.member_key).aggregate(**{name: chosen.occurred_at.min()})


def _attach(members: ir.Table, found: ir.Table, name: str) -> ir.Table:
    joined = members.left_join(found, members.member_key == found.member_key)
    return joined.select(members, found[name])


def _reach_times(
    events: ir.Table, steps: list[Step], members: ir.Table, window: timedelta, order: FunnelOrder
) -> ir.Table:
    """Add ``at_k``: when each member reached step k (null if they did not)."""
    members = members.mutate(at_1=members.t1)
    for k, step in enumerate(steps[1:], start=2):
        after = f"at_{k - 1}" if order == "strict" else "t1"
        members = _attach(members, _first_after(events, step, members, after, window, f"t_{k}"), f"t_{k}")
        if order == "strict":
            members = members.mutate(**{f"at_{k}": members[f"t_{k}"]})
        else:
            # Reached once every step so far has been seen; ifelse keeps null if any is missing.
            found = [members[f"t_{i}"] for i in range(2, k + 1)]
            complete = ibis.and_(*[t.notnull() for t in found])
            members = members.mutate(**{f"at_{k}": ibis.ifelse(complete, ibis.greatest(*found), ibis.null())})
    return members


def _without_excluded(events: ir.Table, members: ir.Table, exclusions: list[Step], n: int) -> ir.Table:
    """Drop members with an exclusion event strictly between entry and their conversion."""
    if not exclusions:
        return members
    converted_at = ibis.coalesce(*[members[f"at_{k}"] for k in range(n, 0, -1)])
    members = members.mutate(converted_at=converted_at)
    condition = ibis.or_(*[step.matches(events) for step in exclusions])
    excluded = events.filter(condition)
    hits = excluded.join(members, excluded.member_key == members.member_key).filter(
        (excluded.occurred_at > members.t1) & (excluded.occurred_at < members.converted_at)
    )
    gone = hits.select(gone=hits.member_key)
    return members.anti_join(gone, members.member_key == gone.gone)


def _per_step(members: ir.Table, steps: list[Step]) -> ir.Table:
    """One row per (breakdown, step): members reaching it and the median seconds from entry."""
    rows = []
    entry = members.t1.epoch_seconds()
    for k, step in enumerate(steps, start=1):
        at = members[f"at_{k}"]
        seconds = (at.epoch_seconds() - entry).cast("float64")
        rows.append(
            members.group_by("breakdown").aggregate(
                step=ibis.literal(k, "int64"),
                step_name=ibis.literal(step.name),
                members=ibis.ifelse(at.notnull(), 1, 0).sum().cast("int64"),
                median_seconds=seconds.median(),
            )
        )
    return ibis.union(*rows, distinct=False) if len(rows) > 1 else rows[0]


def _with_rates(counts: ir.Table) -> ir.Table:
    w = ibis.window(group_by=counts.breakdown, order_by=counts.step)
    previous = counts.members.lag().over(w)
    first = counts.members.first().over(w)

    def share(denominator: ir.IntegerValue) -> ir.FloatingValue:
        return ibis.cases((denominator > 0, counts.members.cast("float64") / denominator), else_=0.0)

    rated = counts.mutate(
        conversion_from_previous=share(ibis.coalesce(previous, counts.members)),
        conversion_from_first=share(first),
    )
    return rated.select(
        "breakdown",
        "step",
        "step_name",
        "members",
        "conversion_from_previous",
        "conversion_from_first",
        "median_seconds",
    ).order_by(["breakdown", "step"])


def funnel_table(
    events: ir.Table,
    steps: list[Step],
    *,
    window: timedelta,
    order: FunnelOrder = "strict",
    exclusions: list[Step] | None = None,
    breakdown: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> ir.Table:
    """The funnel of ``steps`` over ``events`` as defined in the module docstring.

    ``start`` and ``end`` (dates mean midnight) bound the entry event only.
    Without ``breakdown`` every row's ``breakdown`` is ``"all"``.
    """
    if not steps:
        raise ValidationError("a funnel needs at least one step", field="steps")
    if window <= timedelta(0):
        raise ValidationError("the conversion window must be positive", field="window")
    needed = {"member_key", "occurred_at", "event_type"}
    needed |= {column for step in [*steps, *(exclusions or [])] for column, _ in step._filters()}
    if breakdown is not None:
        needed.add(breakdown)
    events = events.select(*sorted(needed & set(events.columns)))  # carry no column a step does not read
    members = _entries(events, steps[0], breakdown, start, end)
    members = _reach_times(events, steps, members, window, order)
    members = _without_excluded(events, members, exclusions or [], len(steps))
    return _with_rates(_per_step(members, steps))
