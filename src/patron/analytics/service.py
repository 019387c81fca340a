"""Read side of analytics: segment summary and KPI reports from the current build."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from patron.analytics.artefacts import BuildReader
from patron.analytics.cohort import CohortMetric, CohortPeriod, retention_table
from patron.analytics.kpi import GRANULARITIES, Granularity, kpi_table
from patron.analytics.schemas import CohortCell, CohortReport, KpiPoint, KpiReport, SegmentRead, SegmentSummary
from patron.errors import ValidationError

__all__ = ["cohort_report", "kpi_report", "segment_summary"]

_MAX_POINTS = 5000


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
