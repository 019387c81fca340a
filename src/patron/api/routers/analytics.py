"""Segments, KPIs and cohorts."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends

from patron.analytics.cohort import CohortMetric, CohortPeriod
from patron.analytics.kpi import Granularity
from patron.analytics.schemas import CohortReport, KpiReport, SegmentSummary
from patron.analytics.service import cohort_report, kpi_report, segment_summary
from patron.api.deps import Reader, require
from patron.auth.service import Principal

router = APIRouter(tags=["analytics"])


@router.get("/segments", summary="Members per RFM segment", response_model=SegmentSummary)
def segments(_caller: Annotated[Principal, Depends(require("segments:read"))], reader: Reader) -> SegmentSummary:
    return segment_summary(reader)


@router.get("/kpis", summary="GMV, orders, buyers, AOV, repurchase, new vs returning", response_model=KpiReport)
def kpis(
    _caller: Annotated[Principal, Depends(require("kpis:read"))],
    reader: Reader,
    start: date | None = None,
    end: date | None = None,
    granularity: Granularity = "month",
) -> KpiReport:
    return kpi_report(reader, start, end, granularity)


@router.get("/cohorts", summary="Retention of acquisition cohorts (members or revenue)", response_model=CohortReport)
def cohorts(
    _caller: Annotated[Principal, Depends(require("kpis:read"))],
    reader: Reader,
    period: CohortPeriod = "month",
    metric: CohortMetric = "members",
    start: date | None = None,
    end: date | None = None,
) -> CohortReport:
    return cohort_report(reader, period, metric, start, end)
