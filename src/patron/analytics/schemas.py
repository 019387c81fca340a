"""Outward types of the analytics domain."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

__all__ = ["BuildRead", "CohortCell", "CohortReport", "KpiPoint", "KpiReport", "SegmentRead", "SegmentSummary"]


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
