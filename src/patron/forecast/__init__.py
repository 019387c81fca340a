"""Demand forecasts per product and category, their backtest, and low-stock warnings.

The build calls :func:`forecast_step` and :func:`write_forecast_artefacts`; the API and the CLI read
the artefacts through :mod:`patron.forecast.service`.
"""

from patron.forecast.backtest import Backtest, backtest, forecast_at, wape
from patron.forecast.baseline import seasonal_baseline
from patron.forecast.demand import LEVELS, DemandPanel, Level, daily_demand, demand_panel, demand_units
from patron.forecast.model import CAMPAIGNS, Campaign, DemandModel, ModelSettings
from patron.forecast.step import ForecastResult, forecast_step, write_forecast_artefacts
from patron.forecast.stock import StockPosition, StockWarning, assess

__all__ = [
    "CAMPAIGNS",
    "LEVELS",
    "Backtest",
    "Campaign",
    "DemandModel",
    "DemandPanel",
    "ForecastResult",
    "Level",
    "ModelSettings",
    "StockPosition",
    "StockWarning",
    "assess",
    "backtest",
    "daily_demand",
    "demand_panel",
    "demand_units",
    "forecast_at",
    "forecast_step",
    "seasonal_baseline",
    "wape",
    "write_forecast_artefacts",
]
