"""The forecasts page: recent demand and its forecast per category (or product), the backtest, low stock.

The build writes ``forecast.json``, ``forecasts.parquet``, ``demand_history.parquet`` and
``stock_warnings.parquet``; :mod:`patron.forecast.service` reads them. A build without them says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patron.analytics.artefacts import BuildReader
from patron.console.i18n import Translator, fmt_decimal, fmt_int, fmt_percent
from patron.errors import NotFoundError
from patron.forecast.demand import LEVELS, Level
from patron.forecast.schemas import ForecastReport, ForecastSeries, StockWarningRead
from patron.forecast.service import forecast_page, forecast_report, stock_warning_page

__all__ = ["SERIES_LISTED", "WARNINGS_LISTED", "ForecastFilters", "forecasts_context"]

SERIES_LISTED = 50  # series offered in the selector, largest forecast first
WARNINGS_LISTED = 100


@dataclass(frozen=True)
class ForecastFilters:
    """The level (category or product) and the series to draw; values not understood are reported."""

    level: Level = "category"
    key: str | None = None
    ignored: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ForecastFilters:
        level = params.get("level", "category")
        chosen = next((name for name in LEVELS if name == level), None)
        key = params.get("key", "").strip()[:200] or None
        ignored = () if chosen is not None else (("level", level[:100]),)
        return cls(level=chosen or "category", key=key, ignored=ignored)


def _series_label(series: ForecastSeries) -> str:
    return f"{series.title} ({series.key})" if series.title and series.title != series.key else series.key


def _chart(series: ForecastSeries, translate: Translator) -> dict[str, Any]:
    """History and forecast on one day axis: history first, then the forecast days."""
    past = [p.day.isoformat() for p in series.history]
    ahead = [p.day.isoformat() for p in series.forecast]
    gap: list[float | None] = [None] * len(past)
    return {
        "days": past + ahead,
        "history": [p.units for p in series.history] + [None] * len(ahead),
        "forecast": gap + [round(p.forecast, 3) for p in series.forecast],
        "baseline": gap + [round(p.baseline, 3) for p in series.forecast],
        "start": ahead[0] if ahead else None,
        "historyLabel": translate("forecasts.history"),
        "forecastLabel": translate("forecasts.model"),
        "baselineLabel": translate("forecasts.baseline"),
        "unitsLabel": translate("forecasts.units"),
    }


def _wape(value: float | None) -> str:
    return "—" if value is None else fmt_percent(value)


def _backtest(report: ForecastReport, translate: Translator) -> list[dict[str, Any]]:
    rows = []
    for level in LEVELS:
        score = report.backtest.levels.get(level)
        if score is None:
            continue
        better = None
        if score.model_wape is not None and score.baseline_wape is not None:
            better = "model" if score.model_wape < score.baseline_wape else "baseline"
        rows.append(
            {
                "level": level,
                "level_label": translate(f"forecasts.level.{level}"),
                "label": translate(f"forecasts.level.{level}"),
                "series": fmt_int(score.series),
                "actual": fmt_int(score.actual_units),
                "baseline": _wape(score.baseline_wape),
                "model": _wape(score.model_wape),
                "better": better,
                "windows": len(score.windows),
            }
        )
    return rows


def _warning(row: StockWarningRead) -> dict[str, Any]:
    return {
        "product": row.product_key,
        "title": row.title,
        "on_hand": fmt_int(row.on_hand),
        "lead_time": row.lead_time_days,
        "threshold": fmt_int(row.threshold),
        "projected_min": fmt_decimal(row.projected_min, 1),
        "crosses_on": row.crosses_on.isoformat(),
        "cover": "—" if row.days_of_cover is None else fmt_decimal(row.days_of_cover, 1),
        "order": fmt_int(row.suggested_order),
    }


def _series(build_dir: Path, filters: ForecastFilters, report: ForecastReport) -> tuple[Level, list[ForecastSeries]]:
    """The level to show (the asked one, else one with series) and its largest series."""
    levels = [filters.level, *(level for level in LEVELS if level != filters.level)]
    for level in levels:
        if report.series.get(level, 0) > 0:
            return level, forecast_page(build_dir, level, page_size=SERIES_LISTED).items
    return filters.level, []


def forecasts_context(reader: BuildReader, filters: ForecastFilters, translate: Translator) -> dict[str, Any]:
    """The chosen series' chart, the selector, the backtest table and the low-stock warnings."""
    build_dir = Path(reader.manifest["path"])
    try:
        report = forecast_report(build_dir, reader.build_id)
    except NotFoundError:
        return {"no_forecasts": True, "notices": [], "chart_data": None}
    names = {"level": translate("forecasts.level_label")}
    notices = [translate("form.ignored", field=names[name], value=value) for name, value in filters.ignored]
    level, listed = _series(build_dir, filters, report)
    chosen = next((s for s in listed if s.key == filters.key), listed[0] if listed else None)
    if filters.key is not None and (chosen is None or chosen.key != filters.key):
        try:  # a series beyond the selector's list
            chosen = forecast_page(build_dir, level, key=filters.key).items[0]
        except NotFoundError:
            notices.append(translate("forecasts.unknown_key", key=filters.key))
    options = [(s.key, _series_label(s), fmt_decimal(s.forecast_units, 1)) for s in listed]
    if chosen is not None and chosen.key not in {s.key for s in listed}:
        options.insert(0, (chosen.key, _series_label(chosen), fmt_decimal(chosen.forecast_units, 1)))
    warnings = stock_warning_page(build_dir, page_size=WARNINGS_LISTED)
    context: dict[str, Any] = {
        "no_forecasts": False,
        "notices": notices,
        "as_of": report.as_of.isoformat(),
        "horizon": report.horizon_days,
        "reason": report.reason or report.backtest.reason,
        "level": level,
        "level_label": translate(f"forecasts.level.{level}"),
        "level_options": [(name, translate(f"forecasts.level.{name}")) for name in LEVELS if report.series.get(name)],
        "series_options": options,
        "series": chosen,
        "series_label": None if chosen is None else _series_label(chosen),
        "forecast_units": None if chosen is None else fmt_decimal(chosen.forecast_units, 1),
        "backtest": _backtest(report, translate),
        "backtest_windows": report.backtest.windows,
        "warnings": [_warning(w) for w in warnings.items],
        "warnings_total": warnings.total,
        "chart_data": None,
    }
    if chosen is not None:
        context["chart_data"] = {"locale": translate.language, "charts": {"forecast-chart": _chart(chosen, translate)}}
    return context
