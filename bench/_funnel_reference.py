"""The funnel a pandas user would write: the semantics of ``patron.analytics.funnel``, in pandas.

Per member: the entry ``t1`` is the first step-1 event in range (``groupby().min()``, or a sort and
``drop_duplicates`` to keep the entry event's breakdown value); each later step is one ``merge_asof``
(``direction="forward"``, ``allow_exact_matches=False``) that finds the member's first event of that step
strictly after the previous match (strict order) or after the entry (any order), kept if it is within the
window of the entry. An exclusion is one more ``merge_asof``: the first exclusion event after the entry,
fatal if it comes before the member's conversion. Counts and medians are a ``groupby`` per breakdown value.

``steps`` and ``exclusions`` are objects with ``event_type``, ``category``, ``channel``, ``product_key`` and
``name`` (``patron.analytics.funnel.Step``); the result has the columns of ``funnel_table``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

NARROWING = ("category", "channel", "product_key")
ALL = "all"


class StepLike(Protocol):
    event_type: str
    category: str | None
    channel: str | None
    product_key: str | None

    @property
    def name(self) -> str: ...


def _matches(events: pd.DataFrame, step: StepLike) -> pd.Series:
    mask = events["event_type"] == step.event_type
    for column in NARROWING:
        value = getattr(step, column)
        if value is not None:
            mask &= events[column] == value
    return mask


def _times(events: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """``member_key`` and ``found`` (the event time) of the selected events, sorted by time."""
    hits = events.loc[mask, ["member_key", "occurred_at"]].rename(columns={"occurred_at": "found"})
    return hits.sort_values("found", kind="stable")


def _entries(
    events: pd.DataFrame, first: StepLike, breakdown: str | None, start: date | None, end: date | None
) -> pd.DataFrame:
    """One row per member: ``member_key``, ``t1`` and the ``breakdown`` value of the entry event."""
    mask = _matches(events, first)
    if start is not None:
        mask &= events["occurred_at"] >= pd.Timestamp(start)
    if end is not None:
        mask &= events["occurred_at"] < pd.Timestamp(end)
    if breakdown is None:
        members = events.loc[mask].groupby("member_key", as_index=False)["occurred_at"].min()
        members["breakdown"] = ALL
    else:
        hits = events.loc[mask, ["member_key", "occurred_at"]]
        hits["breakdown"] = events.loc[mask, breakdown].astype("string")
        # Several step-1 events at t1: the smallest value wins (missing values sort last).
        hits = hits.sort_values(["member_key", "occurred_at", "breakdown"], kind="stable")
        members = hits.drop_duplicates("member_key").reset_index(drop=True)
    return members.rename(columns={"occurred_at": "t1"})


def _first_after(members: pd.DataFrame, found: pd.DataFrame, after: str, window: timedelta) -> pd.Series:
    """Per member: the first ``found`` time strictly after column ``after`` and at most ``window`` after t1."""
    columns = list(dict.fromkeys(["member_key", after, "t1"]))
    left = members.loc[members[after].notna(), columns].sort_values(after, kind="stable")
    matched = pd.merge_asof(
        left,
        found,
        left_on=after,
        right_on="found",
        by="member_key",
        direction="forward",
        allow_exact_matches=False,
    )
    # The first event after ``after`` is the only candidate: a later one is further from t1.
    hit = matched["found"].where(matched["found"] <= matched["t1"] + window)
    return pd.Series(hit.to_numpy(), index=left.index).reindex(members.index)


def _reach_times(
    events: pd.DataFrame, steps: list[Any], members: pd.DataFrame, window: timedelta, order: str
) -> pd.DataFrame:
    """Add ``at_k``: when each member reached step k (NaT if they did not)."""
    members["at_1"] = members["t1"]
    for k, step in enumerate(steps[1:], start=2):
        after = f"at_{k - 1}" if order == "strict" else "t1"
        members[f"t_{k}"] = _first_after(members, _times(events, _matches(events, step)), after, window)
        if order == "strict":
            members[f"at_{k}"] = members[f"t_{k}"]
        else:
            seen = members[[f"t_{i}" for i in range(2, k + 1)]]
            members[f"at_{k}"] = seen.max(axis=1).where(seen.notna().all(axis=1))
    return members


def _without_excluded(events: pd.DataFrame, members: pd.DataFrame, exclusions: list[Any], n: int) -> pd.DataFrame:
    """Drop members with an exclusion event strictly between entry and their conversion."""
    if not exclusions:
        return members
    converted = members["at_1"]
    for k in range(2, n + 1):
        converted = members[f"at_{k}"].fillna(converted)
    mask = _matches(events, exclusions[0])
    for step in exclusions[1:]:
        mask |= _matches(events, step)
    left = members[["member_key", "t1"]].assign(converted=converted).sort_values("t1", kind="stable")
    first = pd.merge_asof(
        left,
        _times(events, mask),
        left_on="t1",
        right_on="found",
        by="member_key",
        direction="forward",
        allow_exact_matches=False,
    )
    gone = first.loc[first["found"] < first["converted"], "member_key"]
    return members[~members["member_key"].isin(gone)]


def _per_step(members: pd.DataFrame, steps: list[Any]) -> pd.DataFrame:
    parts = []
    for k, step in enumerate(steps, start=1):
        at = members[f"at_{k}"]
        frame = pd.DataFrame(
            {
                "breakdown": members["breakdown"],
                "reached": at.notna(),
                "seconds": (at - members["t1"]).dt.total_seconds(),
            }
        )
        counts = frame.groupby("breakdown", dropna=False).agg(
            members=("reached", "sum"), median_seconds=("seconds", "median")
        )
        parts.append(counts.reset_index().assign(step=k, step_name=step.name))
    table = pd.concat(parts, ignore_index=True).sort_values(["breakdown", "step"], ignore_index=True)
    table["members"] = table["members"].astype("int64")
    return table


def _with_rates(table: pd.DataFrame) -> pd.DataFrame:
    by_breakdown = table.groupby("breakdown", dropna=False)["members"]
    previous = by_breakdown.shift().fillna(table["members"])
    first = by_breakdown.transform("first")
    members = table["members"].astype("float64")
    table["conversion_from_previous"] = (members / previous).where(previous > 0, 0.0)
    table["conversion_from_first"] = (members / first).where(first > 0, 0.0)
    columns = ["breakdown", "step", "step_name", "members", "conversion_from_previous", "conversion_from_first"]
    return table[[*columns, "median_seconds"]]


def pandas_funnel(
    events: pd.DataFrame,
    steps: list[Any],
    *,
    window: timedelta,
    order: str = "strict",
    exclusions: list[Any] | None = None,
    breakdown: str | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> pd.DataFrame:
    """The funnel of ``steps`` over ``events``, one row per (breakdown, step), as ``funnel_table`` defines it."""
    known = events[events["member_key"].notna()]
    members = _entries(known, steps[0], breakdown, start, end)
    members = _reach_times(known, steps, members, window, order)
    members = _without_excluded(known, members, exclusions or [], len(steps))
    return _with_rates(_per_step(members, steps))
