"""Demand forecasts, their backtest and low-stock warnings of the current build."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from patron.api.deps import Reader, require
from patron.auth.service import Principal
from patron.forecast.demand import Level
from patron.forecast.schemas import ForecastPage, ForecastReport, StockWarningPage
from patron.forecast.service import MAX_PAGE_SIZE, forecast_page, forecast_report, stock_warning_page

router = APIRouter(tags=["forecasts"])

Caller = Annotated[Principal, Depends(require("forecasts:read"))]


@router.get(
    "/forecasts", summary="Recent daily demand and forecast per product or category", response_model=ForecastPage
)
def forecasts(
    _caller: Caller,
    reader: Reader,
    level: Level = "category",
    key: Annotated[str | None, Query(min_length=1, max_length=200, description="one product key or category")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> ForecastPage:
    return forecast_page(Path(reader.manifest["path"]), level, key, page, page_size)


@router.get(
    "/forecasts/backtest",
    summary="Backtest WAPE of the baseline and the learned model per level",
    response_model=ForecastReport,
)
def backtest(_caller: Caller, reader: Reader) -> ForecastReport:
    return forecast_report(Path(reader.manifest["path"]), reader.build_id)


@router.get(
    "/stock-warnings",
    summary="Products whose projected stock falls under their threshold within the lead time",
    response_model=StockWarningPage,
)
def stock_warnings(
    _caller: Caller,
    reader: Reader,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> StockWarningPage:
    return stock_warning_page(Path(reader.manifest["path"]), page, page_size)
