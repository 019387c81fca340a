"""Outward types of the analytics domain."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

__all__ = [
    "BuildRead",
    "CohortCell",
    "CohortReport",
    "EventTypeCount",
    "FunnelGroup",
    "FunnelReport",
    "FunnelStepRead",
    "KpiPoint",
    "KpiReport",
    "RepurchaseBin",
    "RepurchaseReport",
    "SegmentRead",
    "SegmentSummary",
]


class BuildRead(BaseModel):
    id: int
    as_of: date
    status: str
    members_profiled: int
    seconds: float
    artefact_dir: str


class SegmentRead(BaseModel):
    segment: str
    members: int
    share: float
    avg_recency_days: float
    avg_frequency: float
    avg_monetary: float
    monetary: float


class SegmentSummary(BaseModel):
    as_of: date
    build_id: int
    members: int
    segments: list[SegmentRead]


class KpiPoint(BaseModel):
    period: datetime
    gmv: float
    orders: int
    aov: float
    buyers: int
    new_buyers: int
    returning_buyers: int
    repurchase_rate: float


class KpiReport(BaseModel):
    start: date
    end: date
    granularity: str
    points: list[KpiPoint]
    total: KpiPoint | None


class CohortCell(BaseModel):
    cohort: datetime
    period_index: int
    cohort_size: int
    value: float
    retention: float


class CohortReport(BaseModel):
    """Acquisition cohorts by first completed order, and their retention per period."""

    period: str
    metric: str
    cells: list[CohortCell]


class RepurchaseBin(BaseModel):
    """Gaps between a member's consecutive completed orders in ``[lower_days, upper_days)``."""

    bin: int
    lower_days: float
    upper_days: float | None  # None for the last, open bin
    intervals: int
    share: float
    cumulative_share: float


class RepurchaseReport(BaseModel):
    """Distribution of the days between a member's consecutive completed orders."""

    intervals: int
    mean_days: float | None
    percentiles: dict[str, float | None]  # "p25", "p50", "p75", "p90"
    bins: list[RepurchaseBin]


class FunnelStepRead(BaseModel):
    """One step of a funnel: members reaching it and how fast."""

    step: int
    name: str
    members: int
    conversion_from_previous: float
    conversion_from_first: float
    median_seconds: float | None  # from entry to reaching the step; None when nobody reached it


class FunnelGroup(BaseModel):
    """The funnel of the members sharing one breakdown value.

    ``value`` is None for members without a value (no segment, say); ``other``
    marks the group merging the smallest values beyond the report's limit
    (its medians are None: they cannot be merged).
    """

    value: str | None
    other: bool = False
    steps: list[FunnelStepRead]


class FunnelReport(BaseModel):
    """An ordered conversion funnel over member events, overall and per breakdown value."""

    steps: list[str]
    exclusions: list[str]
    window_hours: float
    order: str
    breakdown: str
    start: date | None
    end: date | None
    overall: list[FunnelStepRead]
    groups: list[FunnelGroup]  # empty without a breakdown; largest entry first


class EventTypeCount(BaseModel):
    event_type: str
    events: int
    members: int
