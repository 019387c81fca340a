"""The forecast step of a build over a real warehouse: tables, stock warnings, artefacts, real data."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from patron.forecast.baseline import seasonal_baseline
from patron.forecast.step import ARTEFACTS, FORECAST_SCHEMA, HISTORY_SCHEMA, forecast_step, write_forecast_artefacts
from patron.forecast.stock import WARNING_SCHEMA, StockPosition, assess
from patron.runtime import Runtime
from patron.warehouse.store import Warehouse
from tests.forecast.conftest import FAST, PlantedShop, load_shop, planted_panels, stock_count, warehouse_rows

AS_OF = datetime(2024, 6, 1)


@pytest.fixture
def shop() -> PlantedShop:
    return planted_panels(products=9, start=date(2023, 1, 1), end=date(2024, 5, 31), seed=5)


def test_forecast_step_tables_match_the_history(runtime: Runtime, shop: PlantedShop, tmp_path: Path) -> None:
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, shop)
        result = forecast_step(warehouse, AS_OF, 28, settings=FAST)

    assert result.forecasts.schema == FORECAST_SCHEMA and result.history.schema == HISTORY_SCHEMA
    assert result.stock_warnings.num_rows == 0 and result.stock_warnings.schema == WARNING_SCHEMA  # no counts yet
    rows = result.forecasts.to_pylist()
    products = [r for r in rows if r["level"] == "product"]
    assert {r["key"] for r in products} == set(shop.products)
    assert {r["key"] for r in rows if r["level"] == "category"} == set(shop.categories)
    assert sorted({r["day"] for r in rows}) == [date(2024, 6, 1) + timedelta(days=i) for i in range(28)]
    expected = seasonal_baseline(shop.units, 28)
    for i, key in enumerate(shop.products):
        mine = sorted((r["day"], r["baseline"]) for r in products if r["key"] == key)
        assert [b for _, b in mine] == pytest.approx(expected[i].tolist())
        assert {r["title"] for r in products if r["key"] == key} == {f"Item {key}"}
    history = result.history.to_pylist()
    first = [r for r in history if r["key"] == shop.products[0]]
    assert [r["units"] for r in sorted(first, key=lambda r: r["day"])] == shop.units[0, -56:].astype(int).tolist()
    report = result.report()
    assert json.loads(json.dumps(report)) == report
    assert report["as_of"] == "2024-06-01" and report["backtest"]["windows"] == 3
    assert report["history"] == {"start": "2023-01-01", "end": "2024-06-01", "days": 517}
    assert set(report["backtest"]["levels"]) == {"product", "category"}
    assert report["model"]["fitted"] is True and report["reason"] is None

    write_forecast_artefacts(result, tmp_path / "build-1")

    assert sorted(p.name for p in (tmp_path / "build-1").iterdir()) == sorted(ARTEFACTS)
    assert pq.read_table(tmp_path / "build-1" / "forecasts.parquet").equals(result.forecasts)
    assert json.loads((tmp_path / "build-1" / "forecast.json").read_text()) == report


def test_stock_warnings_use_the_latest_count_and_the_forecast(runtime: Runtime, shop: PlantedShop) -> None:
    p0, p1, p2 = shop.products[:3]
    counts = [
        stock_count(p0, "2024-05-20 18:00", 100_000, 7, 10),  # older count: replaced by the next one
        stock_count(p0, "2024-05-31 23:00", 5, 7, 10),  # short: under 10 at once
        stock_count(p1, "2024-05-31 23:00", 100_000, 7, 10),  # plenty
        stock_count(p1, "2024-06-02 09:00", 0, 7, 10),  # taken after the as-of day: not used
        stock_count(p2, "2024-06-01 08:00", 60, 14, 5),  # taken on the as-of day: used
        stock_count("t:never-sold", "2024-05-31 23:00", 2, 3, 4),  # no sales: no demand, but under its threshold
    ]
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, shop)
        warehouse.insert_new("inventory", warehouse_rows("inventory", counts))
        result = forecast_step(warehouse, AS_OF, 28, settings=FAST)

    warned = {row["product_key"]: row for row in result.stock_warnings.to_pylist()}
    assert p1 not in warned
    assert warned[p0]["crosses_on"] == date(2024, 6, 1) and warned[p0]["on_hand"] == 5
    assert warned["t:never-sold"]["days_of_cover"] is None and warned["t:never-sold"]["title"] is None
    forecast = {
        key: np.array([r["forecast"] for r in sorted(rows, key=lambda r: r["day"])])
        for key in (p0, p2)
        if (rows := [r for r in result.forecasts.to_pylist() if r["key"] == key and r["level"] == "product"])
    }
    positions = (StockPosition(p0, f"Item {p0}", 5, 7, 10), StockPosition(p2, f"Item {p2}", 60, 14, 5))
    for position in positions:
        key = position.product_key
        expected = assess(position, forecast[key], date(2024, 6, 1))
        if expected is None:
            assert key not in warned
        else:
            assert warned[key]["crosses_on"] == expected.crosses_on
            assert warned[key]["suggested_order"] == expected.suggested_order
            assert warned[key]["projected_min"] == pytest.approx(expected.projected_min)
    assert result.report()["stock"]["products_with_inventory"] == 4


def test_no_orders_gives_empty_forecasts_and_a_reason(runtime: Runtime) -> None:
    with runtime.warehouse() as warehouse:
        warehouse.ensure_schema()
        warehouse.insert_new("inventory", warehouse_rows("inventory", [stock_count("t:x", "2024-05-01", 1, 3, 2)]))
        result = forecast_step(warehouse, AS_OF)

    report = result.report()
    assert result.forecasts.num_rows == 0 and result.history.num_rows == 0
    assert report["reason"] == "no completed orders before the as-of day"
    assert report["backtest"]["reason"] == report["reason"]
    assert result.stock_warnings.column("product_key").to_pylist() == ["t:x"]  # 1 on hand, threshold 2


def test_a_short_history_forecasts_with_the_baseline_and_says_why(runtime: Runtime) -> None:
    shop = planted_panels(products=4, start=date(2024, 5, 1), end=date(2024, 5, 31))
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, shop)
        result = forecast_step(warehouse, AS_OF, 28, settings=FAST)

    report = result.report()
    assert report["backtest"]["windows"] == 0
    assert report["backtest"]["reason"] == "too little history for a backtest: 31 days, need 119"
    assert report["model"]["fitted"] is False
    assert result.forecasts.column("forecast").to_pylist() == result.forecasts.column("baseline").to_pylist()
    assert result.forecasts.num_rows > 0


def test_a_warehouse_without_an_inventory_table_warns_about_nothing(runtime: Runtime, shop: PlantedShop) -> None:
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, shop)
        warehouse.con.drop_table("inventory")
        result = forecast_step(warehouse, AS_OF, 7, backtest_windows=1, settings=FAST)

    assert result.stock_warnings.num_rows == 0
    assert result.report()["stock"]["products_with_inventory"] == 0
    assert result.report()["backtest"]["windows"] == 1


def test_a_horizon_out_of_range_is_refused(runtime: Runtime) -> None:
    from patron.errors import ValidationError

    with runtime.warehouse() as warehouse, pytest.raises(ValidationError) as caught:
        forecast_step(warehouse, AS_OF, 0)

    assert caught.value.field == "horizon_days"


@pytest.mark.slow
def test_online_retail_backtest(retail: Runtime) -> None:
    """The figures of docs/forecasts.md: the model wins on products; on the shop total it does not (see there)."""
    with retail.warehouse(read_only=True) as warehouse:
        result = forecast_step(warehouse, datetime(2011, 12, 10))

    levels = result.report()["backtest"]["levels"]
    product, total = levels["product"], levels["category"]
    assert product["series"] > 2000 and total["series"] == 1  # no categories: one series, the shop total
    assert product["model_wape"] < 0.9 * product["baseline_wape"]
    assert total["baseline_wape"] == pytest.approx(0.281, abs=5e-4)  # the baseline is deterministic
    assert total["model_wape"] < 1.15 * total["baseline_wape"]
    assert result.report()["timings"]["total_s"] < 60


@pytest.mark.slow
def test_the_demo_shop_warns_about_the_products_it_planted_short(runtime: Runtime) -> None:
    from patron.demo import generate_shop
    from patron.ingest.service import import_batch

    batch = generate_shop(3_000, 8)
    import_batch(runtime, "demo", "demo", lambda: batch)
    with runtime.warehouse(read_only=True) as warehouse:
        result = forecast_step(warehouse, datetime(2026, 1, 1), settings=FAST)

    stock = batch.inventory
    assert stock is not None
    orders, lines = batch.orders, batch.order_lines
    assert orders is not None and lines is not None
    recent = orders.filter((orders["status"] == "completed") & (orders["ordered_at"] >= datetime(2025, 12, 4)))
    rate = (
        lines.join(recent.select("order_key"), on="order_key")
        .group_by("product_key")
        .agg((pl.col("quantity").sum() / 28).alias("rate"))
    )
    stock = stock.join(rate, on="product_key", how="left").with_columns(pl.col("rate").fill_null(0.0))
    planted = set(
        stock.filter(pl.col("on_hand") < pl.col("rate") * pl.col("lead_time_days") + pl.col("safety_stock"))[
            "product_key"
        ]
    )
    warned = set(result.stock_warnings.column("product_key").to_pylist())
    assert len(planted) >= 10
    assert len(warned & planted) >= 0.8 * len(planted)
    assert len(warned & planted) >= 0.8 * len(warned)
    backtest = result.report()["backtest"]["levels"]
    for level in ("product", "category"):
        assert backtest[level]["model_wape"] < backtest[level]["baseline_wape"]


@pytest.mark.postgres
def test_the_step_gives_the_same_result_on_postgres(runtime: Runtime, shop: PlantedShop) -> None:
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("PATRON_TEST_DATABASE_URL is not set")
    counts = [stock_count(shop.products[0], "2024-05-31 23:00", 5, 7, 10)]
    with runtime.warehouse() as warehouse:
        load_shop(warehouse, shop)
        warehouse.insert_new("inventory", warehouse_rows("inventory", counts))
        on_duck = forecast_step(warehouse, AS_OF, 14, backtest_windows=1, settings=FAST)
    with Warehouse(PG_URL) as warehouse:
        if set(warehouse.con.list_tables()) & {"orders", "order_lines", "products", "inventory"}:
            pytest.skip("the test database already holds warehouse tables")
        try:
            load_shop(warehouse, shop)
            warehouse.insert_new("inventory", warehouse_rows("inventory", counts))
            on_pg = forecast_step(warehouse, AS_OF, 14, backtest_windows=1, settings=FAST)
        finally:
            for name in ("members", "member_order", "products", "orders", "order_lines", "events", "inventory"):
                warehouse.con.drop_table(name, force=True)

    duck_rows = sorted(on_duck.forecasts.to_pylist(), key=lambda r: (r["level"], r["key"], r["day"]))
    pg_rows = sorted(on_pg.forecasts.to_pylist(), key=lambda r: (r["level"], r["key"], r["day"]))
    assert [(r["level"], r["key"], r["day"], r["title"]) for r in pg_rows] == [
        (r["level"], r["key"], r["day"], r["title"]) for r in duck_rows
    ]
    assert [r["forecast"] for r in pg_rows] == pytest.approx([r["forecast"] for r in duck_rows], rel=1e-9)
    assert [r["baseline"] for r in pg_rows] == [r["baseline"] for r in duck_rows]
    assert on_pg.stock_warnings.to_pylist() == on_duck.stock_warnings.to_pylist()
    assert on_pg.report()["backtest"] == on_duck.report()["backtest"]
