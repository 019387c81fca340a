"""Segments, KPIs, cohorts, repurchase intervals and funnels."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from patron.analytics.cohort import CohortMetric, CohortPeriod
from patron.analytics.funnel import FunnelOrder
from patron.analytics.kpi import Granularity
from patron.analytics.schemas import CohortReport, FunnelReport, KpiReport, RepurchaseReport, SegmentSummary
from patron.analytics.service import (
    MAX_FUNNEL_WINDOW,
    FunnelBreakdown,
    cohort_report,
    funnel_report,
    kpi_report,
    parse_steps,
    repurchase_report,
    segment_summary,
)
from patron.api.deps import Reader, require
from patron.auth.service import Principal

router = APIRouter(tags=["analytics"])

_STEPS_HELP = (
    "Comma-separated event types in funnel order; a step may be narrowed with :category=<value>, "
    ":channel=<value> or :product=<product key>, e.g. view:category=Books,cart,purchase"
)


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


@router.get(
    "/repurchase-intervals",
    summary="Days between a member's consecutive orders: histogram and percentiles",
    response_model=RepurchaseReport,
)
def repurchase_intervals(
    _caller: Annotated[Principal, Depends(require("kpis:read"))], reader: Reader
) -> RepurchaseReport:
    return repurchase_report(reader)


@router.get("/funnels", summary="Ordered conversion funnel over member events", response_model=FunnelReport)
def funnels(
    _caller: Annotated[Principal, Depends(require("kpis:read"))],
    reader: Reader,
    steps: Annotated[str, Query(max_length=2000, description=_STEPS_HELP)],
    window_hours: Annotated[
        float, Query(gt=0, le=MAX_FUNNEL_WINDOW.days * 24, description="Conversion window after the first step")
    ] = 24,
    order: Annotated[FunnelOrder, Query(description="strict: each step after the previous; any: any order")] = "strict",
    exclude: Annotated[
        str, Query(max_length=2000, description="Exclusion steps, same syntax as steps; may be empty")
    ] = "",
    breakdown: FunnelBreakdown = "none",
    start: Annotated[date | None, Query(description="First day of entry (the first step)")] = None,
    end: Annotated[date | None, Query(description="Day after the last day of entry")] = None,
) -> FunnelReport:
    return funnel_report(
        reader,
        parse_steps(steps, field="query.steps"),
        timedelta(hours=window_hours),
        order,
        parse_steps(exclude, field="query.exclude", required=False),
        breakdown,
        start,
        end,
    )
