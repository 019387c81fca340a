"""Outward types of the forecast domain."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from patron.forecast.demand import Level

__all__ = [
    "BacktestRead",
    "DemandPoint",
    "ForecastPage",
    "ForecastPoint",
    "ForecastReport",
    "ForecastSeries",
    "LevelScoreRead",
    "StockWarningPage",
    "StockWarningRead",
    "WindowScoreRead",
]


class DemandPoint(BaseModel):
    day: date
    units: int


class ForecastPoint(BaseModel):
    day: date
    baseline: float = Field(description="mean of the same weekday over the last 4 weeks")
    forecast: float = Field(description="the learned model's forecast")


class ForecastSeries(BaseModel):
    """One product's or category's recent demand and its forecast."""

    level: Level
    key: str
    title: str | None
    forecast_units: float = Field(description="sum of the forecast over the horizon")
    history: list[DemandPoint]
    forecast: list[ForecastPoint]


class ForecastPage(BaseModel):
    as_of: date
    horizon_days: int
    level: Level
    items: list[ForecastSeries]
    total: int
    page: int
    page_size: int


class WindowScoreRead(BaseModel):
    start: date
    end: date = Field(description="first day after the window")
    series: int
    actual_units: float
    baseline_wape: float | None
    model_wape: float | None


class LevelScoreRead(WindowScoreRead):
    """A level's WAPE over all windows together, and per window."""

    windows: list[WindowScoreRead]


class BacktestRead(BaseModel):
    windows: int
    horizon_days: int
    training_rows: list[int]
    levels: dict[str, LevelScoreRead]
    reason: str | None = None


class ForecastReport(BaseModel):
    """The forecast step's summary: backtest, sizes, method and timings."""

    build_id: int
    as_of: date
    horizon_days: int
    backtest: BacktestRead
    history: dict[str, Any]
    series: dict[str, int]
    series_with_sales: dict[str, int]
    model: dict[str, Any]
    baseline: dict[str, Any]
    stock: dict[str, Any]
    timings: dict[str, float]
    reason: str | None = None


class StockWarningRead(BaseModel):
    product_key: str
    title: str | None
    on_hand: int
    lead_time_days: int
    threshold: int = Field(description="the product's safety stock")
    projected_min: float = Field(description="projected stock at the end of the lead time")
    crosses_on: date = Field(description="first day the projected stock is under the threshold")
    days_of_cover: float | None = Field(description="days the stock on hand lasts at the forecast demand")
    suggested_order: int


class StockWarningPage(BaseModel):
    as_of: date
    items: list[StockWarningRead]
    total: int
    page: int
    page_size: int
