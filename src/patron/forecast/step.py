"""The forecast step of a build: demand, backtest, forecasts, stock warnings, artefacts.

History is the days before the as-of day (at most :data:`HISTORY_DAYS`, never before the first
completed order); forecasts cover the ``horizon_days`` days from the as-of day on. An as-of instant
that is not midnight counts from its day: orders of that day are not history.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from patron.errors import ValidationError
from patron.forecast.backtest import Backtest, LevelForecast, backtest, forecast_at
from patron.forecast.baseline import BASELINE_WEEKS, baseline_of
from patron.forecast.demand import LEVELS, DemandPanel, Level, demand_panels
from patron.forecast.model import MIN_SALE_DAYS, TARGET_CAP, ModelSettings, SeriesSet, feature_names
from patron.forecast.stock import REVIEW_DAYS, WARNING_SCHEMA, StockPosition, warn_all
from patron.warehouse.store import Warehouse

__all__ = [
    "ARTEFACTS",
    "FORECAST_SCHEMA",
    "HISTORY_DAYS",
    "HISTORY_SCHEMA",
    "ForecastResult",
    "forecast_step",
    "write_forecast_artefacts",
]

log = logging.getLogger(__name__)

HISTORY_DAYS = 730
CHART_DAYS = 56
MAX_HORIZON_DAYS = 366
ARTEFACTS = ("forecasts.parquet", "demand_history.parquet", "stock_warnings.parquet", "forecast.json")

FORECAST_SCHEMA = pa.schema(
    [
        ("level", pa.string()),
        ("key", pa.string()),
        ("title", pa.string()),
        ("day", pa.date32()),
        ("baseline", pa.float64()),
        ("forecast", pa.float64()),
    ]
)
HISTORY_SCHEMA = pa.schema([("level", pa.string()), ("key", pa.string()), ("day", pa.date32()), ("units", pa.int64())])


@dataclass
class ForecastResult:
    """What the forecast step produced; ``report()`` is the JSON summary written next to the tables."""

    as_of: date
    horizon_days: int
    forecasts: pa.Table
    history: pa.Table
    stock_warnings: pa.Table
    backtest: Backtest
    details: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "backtest": self.backtest.as_dict(),
            **self.details,
        }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, dtime())


def _first_order_day(warehouse: Warehouse, before: date) -> date | None:
    orders = warehouse.table("orders")
    done = orders.filter((orders.status == "completed") & (orders.ordered_at < _midnight(before)))
    first = done.ordered_at.min().execute()
    if first is None or first != first:  # None, or NaT from some engines
        return None
    return first.date() if hasattr(first, "date") else first  # type: ignore[no-any-return]


def _panels(warehouse: Warehouse, start: date, end: date) -> list[DemandPanel]:
    orders, lines, products = (warehouse.table(n) for n in ("orders", "order_lines", "products"))
    panels = demand_panels(orders, lines, products, start=start, end=end)
    return [panels[level] for level in LEVELS]


def _titles(warehouse: Warehouse) -> dict[str, str | None]:
    products = warehouse.table("products").select("product_key", "title").to_pyarrow()
    return dict(zip(products.column("product_key").to_pylist(), products.column("title").to_pylist(), strict=True))


class _Laps:
    """Seconds per phase of the step, and in total."""

    def __init__(self) -> None:
        self.began = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[f"{name}_s"] = now - self.last
        self.last = now

    def done(self) -> dict[str, float]:
        return {**self.seconds, "total_s": time.perf_counter() - self.began}


def forecast_step(
    warehouse: Warehouse,
    as_of: datetime,
    horizon_days: int = 28,
    *,
    backtest_windows: int = 3,
    settings: ModelSettings = ModelSettings(),  # noqa: B008
) -> ForecastResult:
    """Backtest both forecasters, forecast every level from ``as_of`` on, warn on low stock.

    Products and categories with too little history simply get no forecast; a warehouse without
    orders gives empty tables and a ``reason`` in the report, not an error.
    """
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValidationError(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}", field="horizon_days")
    laps, first_day = _Laps(), as_of.date()
    titles = _titles(warehouse)
    start = _first_order_day(warehouse, first_day)
    if start is None:
        return _without_history(warehouse, first_day, horizon_days, titles, laps, settings)
    start = max(start, first_day - timedelta(days=HISTORY_DAYS))
    sets = [SeriesSet.of(panel) for panel in _panels(warehouse, start, first_day)]
    laps.lap("demand")
    scored = backtest(sets, horizon_days, backtest_windows, settings)
    laps.lap("backtest")
    final, model = forecast_at(sets, sets[0].panel.days, horizon_days, settings)
    laps.lap("fit")
    positions = _positions(warehouse, first_day, titles)
    warnings = warn_all(positions, _stock_demand(sets[0], final["product"], horizon_days), first_day)
    laps.lap("stock")
    details = _details(
        {"start": start.isoformat(), "end": first_day.isoformat(), "days": sets[0].panel.days},
        {level: int(final[level].series.size) for level in LEVELS},
        {s.panel.level: len(s.panel.keys) for s in sets},
        _model_details(settings, model.used, model.training_rows, model.fitted),
        {"products_with_inventory": len(positions), "warnings": warnings.num_rows, "review_days": REVIEW_DAYS},
        laps.done(),
    )
    log.info("forecast step finished", extra={"as_of": first_day.isoformat(), "seconds": details["timings"]["total_s"]})
    return ForecastResult(
        as_of=first_day,
        horizon_days=horizon_days,
        forecasts=_forecast_table(sets, final, horizon_days, titles),
        history=_history_table(sets, final),
        stock_warnings=warnings,
        backtest=scored,
        details=details,
    )


def _details(
    history: dict[str, Any],
    series: dict[str, int],
    with_sales: dict[str, int],
    model: dict[str, Any],
    stock: dict[str, Any],
    timings: dict[str, float],
    reason: str | None = None,
) -> dict[str, Any]:
    """The report's sections besides the backtest (see :meth:`ForecastResult.report`)."""
    return {
        "history": history,
        "series": series,
        "series_with_sales": with_sales,
        "model": model,
        "baseline": {"method": f"mean of the same weekday over the last {BASELINE_WEEKS} weeks"},
        "stock": stock,
        "timings": timings,
        "reason": reason,
    }


def _without_history(
    warehouse: Warehouse,
    first_day: date,
    horizon_days: int,
    titles: dict[str, str | None],
    laps: _Laps,
    settings: ModelSettings,
) -> ForecastResult:
    positions = _positions(warehouse, first_day, titles)
    warnings = warn_all(positions, {}, first_day)
    reason = "no completed orders before the as-of day"
    details = _details(
        {"start": None, "end": first_day.isoformat(), "days": 0},
        dict.fromkeys(LEVELS, 0),
        dict.fromkeys(LEVELS, 0),
        _model_details(settings, (), 0, False),
        {"products_with_inventory": len(positions), "warnings": warnings.num_rows, "review_days": REVIEW_DAYS},
        laps.done(),
        reason,
    )
    return ForecastResult(
        as_of=first_day,
        horizon_days=horizon_days,
        forecasts=FORECAST_SCHEMA.empty_table(),
        history=HISTORY_SCHEMA.empty_table(),
        stock_warnings=warnings,
        backtest=Backtest(horizon_days, (), (), reason),
        details=details,
    )


def _model_details(settings: ModelSettings, used: tuple[str, ...], rows: int, fitted: bool) -> dict[str, Any]:
    return {
        "method": "HistGradientBoostingRegressor, Poisson loss, one global model, direct multi-step",
        "fitted": fitted,
        "training_rows": rows,
        "features": list(used) or list(feature_names(settings.campaigns)),
        "min_sale_days_in_91": MIN_SALE_DAYS,
        "target_cap": TARGET_CAP,
        "settings": {
            "training_rows": settings.training_rows,
            "training_days": settings.training_days,
            "max_iter": settings.max_iter,
            "learning_rate": settings.learning_rate,
            "max_leaf_nodes": settings.max_leaf_nodes,
            "min_samples_leaf": settings.min_samples_leaf,
            "l2_regularization": settings.l2_regularization,
            "random_state": settings.random_state,
            "campaigns": [f"{c.name} ({c.month:02d}-{c.day:02d})" for c in settings.campaigns],
        },
    }


def _forecast_table(
    sets: list[SeriesSet], final: dict[Level, LevelForecast], horizon: int, titles: dict[str, str | None]
) -> pa.Table:
    parts = []
    for series in sets:
        fc = final[series.panel.level]
        keys = [series.panel.keys[i] for i in fc.series]
        first = series.panel.day(series.panel.days)
        days = [first + timedelta(days=i) for i in range(horizon)]
        title = [titles.get(k) for k in keys] if series.panel.level == "product" else [None] * len(keys)
        parts.append(
            pa.table(
                {
                    "level": [series.panel.level] * (len(keys) * horizon),
                    "key": np.repeat(np.array(keys, dtype=object), horizon).tolist(),
                    "title": np.repeat(np.array(title, dtype=object), horizon).tolist(),
                    "day": days * len(keys),
                    "baseline": fc.baseline.ravel(),
                    "forecast": fc.forecast.ravel(),
                },
                schema=FORECAST_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def _history_table(sets: list[SeriesSet], final: dict[Level, LevelForecast]) -> pa.Table:
    parts = []
    for series in sets:
        panel, which = series.panel, final[series.panel.level].series
        span = min(CHART_DAYS, panel.days)
        keys = [panel.keys[i] for i in which]
        days = [panel.day(panel.days - span + i) for i in range(span)]
        parts.append(
            pa.table(
                {
                    "level": [panel.level] * (len(keys) * span),
                    "key": np.repeat(np.array(keys, dtype=object), span).tolist(),
                    "day": days * len(keys),
                    "units": panel.units[which, panel.days - span :].astype(np.int64).ravel(),
                },
                schema=HISTORY_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def _stock_demand(products: SeriesSet, final: LevelForecast, horizon: int) -> dict[str, NDArray[np.float64]]:
    """Daily demand per product: the model's forecast where there is one, else the seasonal baseline."""
    panel = products.panel
    others = np.setdiff1d(np.arange(len(panel.keys), dtype=np.int64), final.series)
    rest = baseline_of(products.history, others, panel.days - 1, horizon)
    demand = {panel.keys[i]: rest[n] for n, i in enumerate(others)}
    demand.update({panel.keys[i]: final.forecast[n] for n, i in enumerate(final.series)})
    return demand


def _positions(warehouse: Warehouse, first_day: date, titles: dict[str, str | None]) -> list[StockPosition]:
    """The latest stock count per product taken before the end of the as-of day."""
    if "inventory" not in warehouse.con.list_tables():
        return []
    inventory = warehouse.table("inventory")
    counted = inventory.filter(inventory.updated_at < _midnight(first_day + timedelta(days=1)))
    latest = counted.group_by("product_key").aggregate(updated_at=counted.updated_at.max())
    rows = counted.join(latest, ["product_key", "updated_at"]).select(
        "product_key", "on_hand", "lead_time_days", "safety_stock"
    )
    table = rows.order_by("product_key").to_pyarrow().to_pylist()
    return [
        StockPosition(
            product_key=row["product_key"],
            title=titles.get(row["product_key"]),
            on_hand=int(row["on_hand"]),
            lead_time_days=int(row["lead_time_days"]),
            safety_stock=int(row["safety_stock"]),
        )
        for row in table
    ]


def write_forecast_artefacts(result: ForecastResult, build_dir: Path) -> None:
    """Write ``forecasts.parquet``, ``demand_history.parquet``, ``stock_warnings.parquet`` and ``forecast.json``."""
    build_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(result.forecasts, build_dir / "forecasts.parquet")
    pq.write_table(result.history, build_dir / "demand_history.parquet")
    pq.write_table(result.stock_warnings.cast(WARNING_SCHEMA), build_dir / "stock_warnings.parquet")
    (build_dir / "forecast.json").write_text(json.dumps(result.report(), indent=2))
