"""Read side of analytics: segments, KPIs, cohorts, repurchase intervals and funnels from the current build."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import ibis

from patron.analytics.artefacts import BuildReader
from patron.analytics.cohort import (
    CohortMetric,
    CohortPeriod,
    repurchase_intervals,
    repurchase_percentiles,
    retention_table,
)
from patron.analytics.funnel import FunnelOrder, Step, funnel_table
from patron.analytics.kpi import GRANULARITIES, Granularity, kpi_table
from patron.analytics.schemas import (
    CohortCell,
    CohortReport,
    EventTypeCount,
    FunnelGroup,
    FunnelReport,
    FunnelStepRead,
    KpiPoint,
    KpiReport,
    RepurchaseBin,
    RepurchaseReport,
    SegmentRead,
    SegmentSummary,
)
from patron.errors import ValidationError

__all__ = [
    "FUNNEL_BREAKDOWNS",
    "MAX_FUNNEL_GROUPS",
    "MAX_FUNNEL_STEPS",
    "MAX_FUNNEL_WINDOW",
    "FunnelBreakdown",
    "cohort_report",
    "event_types",
    "funnel_report",
    "kpi_report",
    "parse_steps",
    "repurchase_report",
    "segment_summary",
]

_MAX_POINTS = 5000
FunnelBreakdown = Literal["none", "channel", "category", "segment", "lifecycle"]
FUNNEL_BREAKDOWNS: tuple[FunnelBreakdown, ...] = ("none", "channel", "category", "segment", "lifecycle")
_MEMBER_ATTRIBUTES = ("segment", "lifecycle")  # profile columns, joined onto the events by member key
MAX_FUNNEL_STEPS = 10
MAX_FUNNEL_GROUPS = 20
MAX_FUNNEL_WINDOW = timedelta(days=366)
_STEP_FILTERS = {"category": "category", "channel": "channel", "product": "product_key"}
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_FILTER_VALUE = 200


def segment_summary(reader: BuildReader) -> SegmentSummary:
    rows = json.loads((Path(reader.manifest["path"]) / "segments.json").read_text())
    segments = [SegmentRead(**row) for row in rows]
    return SegmentSummary(
        as_of=date.fromisoformat(reader.manifest["as_of"]),
        build_id=reader.build_id,
        members=sum(s.members for s in segments),
        segments=segments,
    )


def kpi_report(reader: BuildReader, start: date | None, end: date | None, granularity: str) -> KpiReport:
    """KPIs per bucket over [start, end) plus the whole-period total.

    Defaults: the year before the build's as-of date.
    """
    if granularity not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {', '.join(GRANULARITIES)}", field="granularity")
    gran: Granularity = granularity
    end = end or date.fromisoformat(reader.manifest["as_of"])
    start = start or end - timedelta(days=365)
    if start >= end:
        raise ValidationError("start must be before end", field="start")
    if gran == "day" and (end - start).days > _MAX_POINTS:
        raise ValidationError(f"at most {_MAX_POINTS} daily points; pick a coarser granularity", field="granularity")
    orders = reader.table("orders")
    points = [KpiPoint(**row) for row in kpi_table(orders, start, end, gran).to_pyarrow().to_pylist()]
    total_rows = kpi_table(orders, start, end, "total").to_pyarrow().to_pylist()
    total = KpiPoint(**total_rows[0]) if total_rows else None
    return KpiReport(start=start, end=end, granularity=gran, points=points, total=total)


def cohort_report(
    reader: BuildReader,
    period: CohortPeriod,
    metric: CohortMetric,
    start: date | None = None,
    end: date | None = None,
) -> CohortReport:
    """Member or revenue retention of acquisition cohorts over the build's orders."""
    if start is not None and end is not None and start >= end:
        raise ValidationError("start must be before end", field="start")
    table = retention_table(reader.table("orders"), period=period, metric=metric, start=start, end=end)
    rows = table.select("cohort", "period_index", "cohort_size", "value", "retention").to_pyarrow().to_pylist()
    return CohortReport(period=period, metric=metric, cells=[CohortCell(**row) for row in rows])


def repurchase_report(reader: BuildReader) -> RepurchaseReport:
    """Histogram and percentiles of the days between a member's consecutive completed orders."""
    orders = reader.table("orders")
    bins = [RepurchaseBin(**row) for row in repurchase_intervals(orders).to_pyarrow().to_pylist()]
    stats = repurchase_percentiles(orders).to_pyarrow().to_pylist()[0]
    percentiles = {key: value for key, value in stats.items() if key.startswith("p")}
    return RepurchaseReport(
        intervals=int(stats["intervals"]), mean_days=stats["mean_days"], percentiles=percentiles, bins=bins
    )


# --- funnels ---------------------------------------------------------------------------


def _parse_step(spec: str, position: int, field: str) -> Step:
    """``cart`` or ``cart:category=Books:channel=app`` -> Step."""
    event_type, *pieces = (part.strip() for part in spec.split(":"))
    filters: list[str] = []
    for piece in pieces:  # a piece without "=" continues the value before it: product=demo:P0042
        if "=" in piece or not filters:
            filters.append(piece)
        else:
            filters[-1] += f":{piece}"
    where = f"step {position} ({spec.strip()!r})"
    if not _EVENT_TYPE.match(event_type):
        raise ValidationError(
            f"{where}: an event type is 1-64 letters, digits, '_', '.' or '-', optionally followed by "
            ":category=..., :channel=... or :product=...",
            field=field,
        )
    narrowed: dict[str, str] = {}
    for piece in filters:
        key, sep, value = (p.strip() for p in piece.partition("="))
        if not sep or key not in _STEP_FILTERS:
            raise ValidationError(f"{where}: filters are category=..., channel=... or product=...", field=field)
        if not value or len(value) > _MAX_FILTER_VALUE:
            raise ValidationError(f"{where}: {key} needs a value of 1-{_MAX_FILTER_VALUE} characters", field=field)
        if _STEP_FILTERS[key] in narrowed:
            raise ValidationError(f"{where}: {key} is given twice", field=field)
        narrowed[_STEP_FILTERS[key]] = value
    return Step(event_type, **narrowed)


def parse_steps(text: str, *, field: str = "steps", required: bool = True) -> list[Step]:
    """Funnel steps from ``view,cart:category=Books,purchase``.

    Steps are separated by commas; each is an event type, optionally narrowed
    by ``:category=<value>``, ``:channel=<value>`` and ``:product=<product key>``
    (values cannot hold ``,``; a ``:`` in a value must not be followed by
    ``name=``). ``field`` names the parameter in errors.
    """
    specs = [spec for spec in text.split(",") if spec.strip()] if text.strip() else []
    if required and not specs:
        raise ValidationError("give at least one step, e.g. view,cart,purchase", field=field)
    if len(specs) > MAX_FUNNEL_STEPS:
        raise ValidationError(f"at most {MAX_FUNNEL_STEPS} steps", field=field)
    return [_parse_step(spec, position, field) for position, spec in enumerate(specs, start=1)]


def event_types(reader: BuildReader) -> list[EventTypeCount]:
    """The event types of the build's member events, most frequent first (empty when there are none)."""
    events = reader.table("events")
    counts = events.group_by("event_type").aggregate(events=events.count(), members=events.member_key.nunique())
    rows = counts.order_by([ibis.desc("events"), "event_type"]).to_pyarrow().to_pylist()
    return [EventTypeCount(**row) for row in rows]


def _validate_funnel(
    steps: Sequence[Step], window: timedelta, order: str, exclusions: Sequence[Step], breakdown: str
) -> None:
    if not 1 <= len(steps) <= MAX_FUNNEL_STEPS:
        raise ValidationError(f"a funnel has 1 to {MAX_FUNNEL_STEPS} steps", field="steps")
    if len(exclusions) > MAX_FUNNEL_STEPS:
        raise ValidationError(f"at most {MAX_FUNNEL_STEPS} exclusion steps", field="exclude")
    if not timedelta(0) < window <= MAX_FUNNEL_WINDOW:
        raise ValidationError(f"the window must be positive and at most {MAX_FUNNEL_WINDOW.days} days", field="window")
    if order not in ("strict", "any"):
        raise ValidationError("order must be strict or any", field="order")
    if breakdown not in FUNNEL_BREAKDOWNS:
        raise ValidationError(f"breakdown must be one of {', '.join(FUNNEL_BREAKDOWNS)}", field="breakdown")


def _funnel_events(reader: BuildReader, breakdown: str) -> ibis.Table:
    """The build's events, with the member attribute to break down by joined on when there is one."""
    events = reader.table("events")
    if breakdown not in _MEMBER_ATTRIBUTES:
        return events
    profiles = reader.table("profiles").select("member_key", breakdown)
    return events.left_join(profiles, "member_key").select(events, profiles[breakdown])


def _step_reads(counts: Sequence[int], medians: Sequence[float | None], names: Sequence[str]) -> list[FunnelStepRead]:
    """Steps with the conversion shares of funnel_table (0 when the denominator is 0)."""
    reads = []
    for k, members in enumerate(counts):
        previous = counts[k - 1] if k else members
        reads.append(
            FunnelStepRead(
                step=k + 1,
                name=names[k],
                members=members,
                conversion_from_previous=members / previous if previous else 0.0,
                conversion_from_first=members / counts[0] if counts[0] else 0.0,
                median_seconds=medians[k],
            )
        )
    return reads


def _groups(rows: list[dict[str, Any]], names: list[str], max_groups: int) -> list[FunnelGroup]:
    """Rows of funnel_table -> one group per breakdown value, largest entry first, the tail merged."""
    by_value: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        by_value.setdefault(row["breakdown"], []).append(row)
    ranked = sorted(by_value.items(), key=lambda item: (-item[1][0]["members"], item[0] is None, item[0] or ""))
    groups = [
        FunnelGroup(value=value, steps=[FunnelStepRead(name=r["step_name"], **_step_fields(r)) for r in steps])
        for value, steps in ranked
    ]
    if len(groups) <= max_groups:
        return groups
    kept, tail = groups[: max_groups - 1], groups[max_groups - 1 :]
    counts = [sum(group.steps[k].members for group in tail) for k in range(len(names))]
    return [*kept, FunnelGroup(value=None, other=True, steps=_step_reads(counts, [None] * len(names), names))]


def _step_fields(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("step", "members", "conversion_from_previous", "conversion_from_first", "median_seconds")
    return {key: row[key] for key in keys}


@dataclass(frozen=True)
class _FunnelQuery:
    steps: list[Step]
    window: timedelta
    order: FunnelOrder
    exclusions: list[Step]
    start: date | None
    end: date | None

    def rows(self, events: ibis.Table, breakdown: str | None) -> list[dict[str, Any]]:
        """funnel_table's rows, broken down by the events column ``breakdown`` unless None."""
        table = funnel_table(
            events,
            self.steps,
            window=self.window,
            order=self.order,
            exclusions=self.exclusions,
            breakdown=breakdown,
            start=self.start,
            end=self.end,
        )
        rows: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
        return rows


def funnel_report(
    reader: BuildReader,
    steps: Sequence[Step],
    window: timedelta = timedelta(days=1),
    order: str = "strict",
    exclusions: Sequence[Step] = (),
    breakdown: str = "none",
    start: date | None = None,
    end: date | None = None,
    *,
    max_groups: int = MAX_FUNNEL_GROUPS,
) -> FunnelReport:
    """The funnel of ``steps`` over the build's member events (definitions in ``analytics.funnel``).

    ``overall`` always has one row per step (zeros when nobody entered);
    ``groups`` has the funnel per breakdown value, the values beyond
    ``max_groups`` merged into one ``other`` group, so that the groups of a
    step always add up to its overall count.
    """
    _validate_funnel(steps, window, order, exclusions, breakdown)
    if start is not None and end is not None and start >= end:
        raise ValidationError("start must be before end", field="start")
    chosen: FunnelOrder = "any" if order == "any" else "strict"
    query = _FunnelQuery(list(steps), window, chosen, list(exclusions), start, end)
    events = _funnel_events(reader, breakdown)
    names = [step.name for step in steps]
    overall = [FunnelStepRead(name=row["step_name"], **_step_fields(row)) for row in query.rows(events, None)]
    if not overall:  # nobody entered: zeros rather than no rows
        overall = _step_reads([0] * len(steps), [None] * len(steps), names)
    groups = _groups(query.rows(events, breakdown), names, max(max_groups, 1)) if breakdown != "none" else []
    return FunnelReport(
        steps=names,
        exclusions=[step.name for step in exclusions],
        window_hours=window.total_seconds() / 3600,
        order=chosen,
        breakdown=breakdown,
        start=start,
        end=end,
        overall=overall,
        groups=groups,
    )
