"""Read side of forecasts: series, backtest and stock warnings from a build's artefacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from patron.errors import NotFoundError, ValidationError
from patron.forecast.demand import LEVELS, Level
from patron.forecast.schemas import (
    DemandPoint,
    ForecastPage,
    ForecastPoint,
    ForecastReport,
    ForecastSeries,
    StockWarningPage,
    StockWarningRead,
)

__all__ = ["MAX_PAGE_SIZE", "forecast_page", "forecast_report", "stock_warning_page"]

MAX_PAGE_SIZE = 500


def _artefact(build_dir: Path, name: str) -> Path:
    path = build_dir / name
    if not path.is_file():
        raise NotFoundError("the current build has no forecasts: run `patron build` to make them")
    return path


def _report(build_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_artefact(build_dir, "forecast.json").read_text())
    return loaded


def _check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise ValidationError("page starts at 1", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size")


def forecast_report(build_dir: Path, build_id: int) -> ForecastReport:
    """Backtest WAPE per level and forecaster, sizes, method and timings of the build's forecast step."""
    return ForecastReport.model_validate({**_report(build_dir), "build_id": build_id})


def forecast_page(
    build_dir: Path, level: str, key: str | None = None, page: int = 1, page_size: int = 20
) -> ForecastPage:
    """Series of one level with recent demand and forecast: one ``key``, or all by forecast units (largest first)."""
    if level not in LEVELS:
        raise ValidationError(f"level must be one of {', '.join(LEVELS)}", field="level")
    _check_page(page, page_size)
    chosen: Level = "product" if level == "product" else "category"
    report = _report(build_dir)
    forecasts = pq.read_table(_artefact(build_dir, "forecasts.parquet"), filters=[("level", "==", chosen)])
    totals = forecasts.group_by(["key"]).aggregate([("forecast", "sum")])
    if key is not None:
        totals = totals.filter(pc.equal(totals["key"], key))
        if totals.num_rows == 0:
            raise NotFoundError(f"the current build has no {chosen} forecast for {key!r}")
    ordered = totals.sort_by([("forecast_sum", "descending"), ("key", "ascending")])
    shown = ordered.slice((page - 1) * page_size, page_size)
    keys = shown["key"].to_pylist()
    history = pq.read_table(
        _artefact(build_dir, "demand_history.parquet"), filters=[("level", "==", chosen), ("key", "in", keys or [""])]
    )
    items = [
        _series(chosen, k, units, forecasts, history)
        for k, units in zip(keys, shown["forecast_sum"].to_pylist(), strict=True)
    ]
    return ForecastPage(
        as_of=report["as_of"],
        horizon_days=report["horizon_days"],
        level=chosen,
        items=items,
        total=ordered.num_rows,
        page=page,
        page_size=page_size,
    )


def _series(level: Level, key: str, units: float, forecasts: pa.Table, history: pa.Table) -> ForecastSeries:
    points = forecasts.filter(pc.equal(forecasts["key"], key)).sort_by("day").to_pylist()
    past = history.filter(pc.equal(history["key"], key)).sort_by("day").to_pylist()
    return ForecastSeries(
        level=level,
        key=key,
        title=points[0]["title"] if points else None,
        forecast_units=units,
        history=[DemandPoint(day=p["day"], units=p["units"]) for p in past],
        forecast=[ForecastPoint(day=p["day"], baseline=p["baseline"], forecast=p["forecast"]) for p in points],
    )


def stock_warning_page(build_dir: Path, page: int = 1, page_size: int = 50) -> StockWarningPage:
    """Products whose projected stock falls under their threshold within the lead time, earliest first."""
    _check_page(page, page_size)
    report = _report(build_dir)
    warnings = pq.read_table(_artefact(build_dir, "stock_warnings.parquet"))
    rows = warnings.slice((page - 1) * page_size, page_size).to_pylist()
    return StockWarningPage(
        as_of=report["as_of"],
        items=[StockWarningRead(**row) for row in rows],
        total=warnings.num_rows,
        page=page,
        page_size=page_size,
    )
