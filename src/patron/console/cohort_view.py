"""The cohorts page: retention heatmap and table, and the repurchase-interval distribution."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from patron.analytics.artefacts import BuildReader
from patron.analytics.cohort import CohortMetric, CohortPeriod
from patron.analytics.schemas import CohortCell, CohortReport, RepurchaseReport
from patron.analytics.service import cohort_report, repurchase_report
from patron.console.i18n import METRICS, PERIODS, Translator, fmt_decimal, fmt_int, fmt_percent

__all__ = ["CohortFilters", "cohorts_context"]

_HEAT_LEVELS = 5


@dataclass(frozen=True)
class CohortFilters:
    """The cohorts page's query string; values not understood fall back to the default and are reported."""

    period: CohortPeriod = "month"
    metric: CohortMetric = "members"
    ignored: tuple[tuple[str, str], ...] = ()  # (parameter, value given)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> CohortFilters:
        period, metric = params.get("period", "month"), params.get("metric", "members")
        ignored = [("period", period)] if period not in PERIODS else []
        ignored += [("metric", metric)] if metric not in METRICS else []
        return cls(
            period=next((p for p in PERIODS if p == period), "month"),
            metric=next((m for m in METRICS if m == metric), "members"),
            ignored=tuple((name, value[:100]) for name, value in ignored),
        )


def _first_cohort(as_of: date, period: CohortPeriod) -> date:
    """Start of the period holding the day a year before ``as_of``: the page shows a year of cohorts."""
    back = as_of - timedelta(days=365)
    return back.replace(day=1) if period == "month" else back - timedelta(days=back.weekday())


def _cohort_label(cohort: datetime, period: CohortPeriod) -> str:
    return cohort.strftime("%Y-%m") if period == "month" else cohort.strftime("%Y-%m-%d")


def _value_text(cell: CohortCell, metric: CohortMetric, translate: Translator) -> str:
    if metric == "members":
        return translate("cohorts.cell_members", count=fmt_int(cell.value))
    return translate("cohorts.cell_revenue", amount=fmt_decimal(cell.value))


def _heat_level(retention: float, top: float) -> int:
    """0..5, the shade of a table cell relative to the largest later-period retention."""
    if top <= 0:
        return 0
    return min(_HEAT_LEVELS, max(0, round(retention / top * _HEAT_LEVELS)))


def _matrix(report: CohortReport, filters: CohortFilters, translate: Translator) -> dict[str, Any]:
    """Heatmap points and table rows from the report's cells."""
    labels: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    width = max((c.period_index for c in report.cells), default=-1) + 1
    later = [c.retention for c in report.cells if c.period_index > 0]
    top = min(max(later, default=1.0), 1.0) or 1.0
    points = []
    for cell in report.cells:
        label = _cohort_label(cell.cohort, filters.period)
        if label not in rows:
            labels.append(label)
            rows[label] = {"label": label, "size": cell.cohort_size, "cells": [None] * width}
        row = len(labels) - 1
        points.append([cell.period_index, row, round(cell.retention, 4), round(cell.value, 2)])
        rows[label]["cells"][cell.period_index] = {
            "text": fmt_percent(cell.retention),
            "title": _value_text(cell, filters.metric, translate),
            "level": _heat_level(cell.retention, top) if cell.period_index else _HEAT_LEVELS,
        }
    return {"labels": labels, "rows": [rows[label] for label in labels], "width": width, "points": points, "top": top}


def _intervals(report: RepurchaseReport, translate: Translator) -> dict[str, Any]:
    def bin_label(lower: float, upper: float | None) -> str:
        return f"{lower:g}+" if upper is None else f"{lower:g}\u2013{upper:g}"

    stats = [("intervals", translate("cohorts.stat.intervals"), fmt_int(report.intervals))]
    stats.append(("mean", translate("cohorts.stat.mean"), _days(report.mean_days, translate)))
    for key, value in report.percentiles.items():
        stats.append((key, translate("cohorts.stat.percentile", p=key[1:]), _days(value, translate)))
    return {
        "count": report.intervals,
        "stats": stats,
        "chart": {
            "labels": [bin_label(b.lower_days, b.upper_days) for b in report.bins],
            "counts": [b.intervals for b in report.bins],
            "shares": [round(b.share, 4) for b in report.bins],
            "axisLabel": translate("cohorts.interval_axis"),
            "seriesLabel": translate("cohorts.stat.intervals"),
        },
    }


def _days(value: float | None, translate: Translator) -> str:
    return "—" if value is None else translate("cohorts.days", days=fmt_decimal(value, 1))


def _notices(filters: CohortFilters, translate: Translator) -> list[str]:
    names = {"period": translate("cohorts.period_label"), "metric": translate("cohorts.metric_label")}
    return [translate("form.ignored", field=names[name], value=value) for name, value in filters.ignored]


def cohorts_context(reader: BuildReader, filters: CohortFilters, translate: Translator) -> dict[str, Any]:
    """A year of acquisition cohorts up to the build's as-of date, and the repurchase intervals."""
    as_of = date.fromisoformat(reader.manifest["as_of"])
    start = _first_cohort(as_of, filters.period)
    report = cohort_report(reader, filters.period, filters.metric, start, None)
    matrix = _matrix(report, filters, translate)
    intervals = _intervals(repurchase_report(reader), translate)
    heatmap = {
        "cohorts": matrix["labels"],
        "indexes": list(range(matrix["width"])),
        "points": matrix["points"],
        "max": matrix["top"],
        "metric": filters.metric,
        "cohortLabel": translate("cohorts.col.cohort"),
        "indexLabel": translate(f"cohorts.index_axis.{filters.period}"),
        "retentionLabel": translate(f"cohorts.metric.{filters.metric}"),
    }
    return {
        "since": start.isoformat(),
        "heatmap_title": translate(f"cohorts.heatmap_title.{filters.metric}"),
        "heatmap_hint": translate(f"cohorts.heatmap_hint.{filters.metric}"),
        "notices": _notices(filters, translate),
        "period_options": [(p, translate(f"cohorts.period.{p}")) for p in PERIODS],
        "metric_options": [(m, translate(f"cohorts.metric.{m}")) for m in METRICS],
        "matrix": matrix,
        "intervals": intervals,
        "chart_data": {
            "locale": translate.language,
            "charts": {"cohort-heatmap": heatmap, "interval-chart": intervals["chart"]},
        },
    }
