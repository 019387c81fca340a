"""Forecast test data: a hand-made shop in warehouse form and daily series with planted structure."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from patron.forecast.demand import DemandPanel
from patron.forecast.model import ModelSettings
from patron.forecast.step import ForecastResult, forecast_step, write_forecast_artefacts
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES
from patron.warehouse.store import Warehouse
from tests.analytics.conftest import duck, postgres
from tests.conftest import make_settings

__all__ = [
    "FAST",
    "PlantedShop",
    "at",
    "built",
    "built_shop",
    "duck",
    "load_shop",
    "planted_panels",
    "postgres",
    "stock_count",
    "warehouse_rows",
]

FAST = ModelSettings(training_rows=20_000, max_iter=80)  # small fits for tests


def warehouse_rows(name: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows of a warehouse table, with every column of its schema (absent ones null)."""
    schema = TABLES[name].to_pyarrow()
    return pa.Table.from_pylist([{field: row.get(field) for field in schema.names} for row in rows], schema=schema)


@dataclass(frozen=True)
class PlantedShop:
    """Daily demand per product with a planted weekly pattern, trend and campaign peaks."""

    start: date
    products: list[str]
    categories: list[str]
    category_of: list[int]
    units: np.ndarray  # products x days

    def panels(self) -> list[DemandPanel]:
        by_category = np.zeros((len(self.categories), self.units.shape[1]))
        np.add.at(by_category, np.asarray(self.category_of), self.units)
        return [
            DemandPanel("product", tuple(self.products), self.start, self.units.astype(np.float64)),
            DemandPanel("category", tuple(self.categories), self.start, by_category),
        ]


WEEKLY = np.array([0.8, 0.85, 0.9, 0.95, 1.1, 1.35, 1.05])  # Monday first


def planted_panels(
    *, products: int = 30, start: date = date(2023, 1, 1), end: date = date(2024, 11, 30), seed: int = 3
) -> PlantedShop:
    """Poisson demand: level x weekday factor x a yearly 40 % growth x a campaign lift.

    The lift rises to 2.5x over the ten days before November 11 and June 18 and is 6x on the day itself.
    """
    rng = np.random.default_rng(seed)
    days = (end - start).days + 1
    dates = [start + timedelta(days=i) for i in range(days)]
    weekday = WEEKLY[[d.weekday() for d in dates]]
    trend = 1.0 + 0.4 * np.arange(days) / 365.0
    lift = np.ones(days)
    for i, d in enumerate(dates):
        for month, day in ((6, 18), (11, 11)):
            to_peak = (date(d.year, month, day) - d).days
            if to_peak == 0:
                lift[i] = 6.0
            elif 0 < to_peak <= 10:
                lift[i] = 1.0 + 1.5 * (10 - to_peak + 1) / 10
    level = np.exp(rng.normal(math.log(4.0), 0.8, products))
    rate = level[:, None] * (weekday * trend * lift)[None, :]
    category_of = [i % 3 for i in range(products)]
    return PlantedShop(
        start=start,
        products=[f"p{i:03d}" for i in range(products)],
        categories=["c0", "c1", "c2"],
        category_of=category_of,
        units=rng.poisson(rate).astype(np.float64),
    )


def at(day: str, clock: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day} {clock}")


def load_shop(warehouse: Warehouse, shop: PlantedShop) -> None:
    """One completed order per product and day with sales, at 15:00; a cancelled order on top that must not count."""
    products = [
        {"product_key": key, "source": "t", "title": f"Item {key}", "category": shop.categories[shop.category_of[i]]}
        for i, key in enumerate(shop.products)
    ]
    orders, lines = [], []
    for i, key in enumerate(shop.products):
        for t in np.flatnonzero(shop.units[i]):
            order = f"O-{key}-{t}"
            when = datetime.combine(shop.start + timedelta(days=int(t)), datetime.min.time()) + timedelta(hours=15)
            member = f"m{i:016x}"
            orders.append(
                {"order_key": order, "source": "t", "ordered_at": when, "status": "completed", "member_key": member}
            )
            lines.append({"order_key": order, "line_no": 1, "product_key": key, "quantity": int(shop.units[i, t])})
            orders.append({"order_key": f"C{order}", "source": "t", "ordered_at": when, "status": "cancelled"})
            lines.append({"order_key": f"C{order}", "line_no": 1, "product_key": key, "quantity": 99})
    money = {"amount": 1.0, "discount": 0.0}
    warehouse.ensure_schema()
    warehouse.insert_new("products", warehouse_rows("products", products))
    warehouse.insert_new("orders", warehouse_rows("orders", [{**o, **money} for o in orders]))
    line_rows = [{**line, "unit_price": 1.0, "returned": False, **money} for line in lines]
    warehouse.insert_new("order_lines", warehouse_rows("order_lines", line_rows))


def stock_count(key: str, day: str, on_hand: int, lead: int, safety: int) -> dict[str, object]:
    """A row of the inventory table."""
    return {
        "product_key": key,
        "updated_at": datetime.fromisoformat(day),
        "on_hand": on_hand,
        "lead_time_days": lead,
        "safety_stock": safety,
    }


@pytest.fixture(scope="session")
def built_shop() -> PlantedShop:
    return planted_panels(products=9, start=date(2023, 6, 1), end=date(2024, 5, 31), seed=7)


@pytest.fixture(scope="session")
def built(
    tmp_path_factory: pytest.TempPathFactory, built_shop: PlantedShop
) -> Iterator[tuple[Runtime, ForecastResult]]:
    """A build (as of 2024-06-01) with forecasts next to its other artefacts, as ``patron build`` writes them.

    The first four products have a stock count of 3 units, lead time 10 days and threshold 5.
    """
    from patron.analytics.build import build_profiles

    runtime = Runtime(make_settings(tmp_path_factory.mktemp("forecast-build") / "home"))
    runtime.settings.home.mkdir(parents=True)
    runtime.store.migrate()
    counts = [stock_count(key, "2024-05-31 20:00", 3, 10, 5) for key in built_shop.products[:4]]
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, built_shop)
        warehouse.insert_new("inventory", warehouse_rows("inventory", counts))
    build = build_profiles(runtime, with_models=False)
    with runtime.warehouse(read_only=True) as warehouse:
        result = forecast_step(warehouse, datetime.combine(build.as_of, time()), settings=FAST)
    write_forecast_artefacts(result, Path(build.artefact_dir))
    yield runtime, result
    runtime.close()
