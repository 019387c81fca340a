"""The forecasts router over HTTP, on a build of a shop with planted demand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.analytics.build import build_profiles
from patron.api.app import create_app
from patron.api.routers.forecasts import router
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.forecast.step import ForecastResult
from patron.runtime import Runtime
from tests.conftest import make_settings
from tests.forecast.conftest import PlantedShop, load_shop

PROBLEM = "application/problem+json"


def _app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime)
    app.include_router(router, prefix="/api/v1")
    return app


def _client(runtime: Runtime, role: str = "analyst", scopes: tuple[str, ...] = ("forecasts:read",)) -> TestClient:
    key = create_api_key(runtime.store, ApiKeyCreate(name=f"{role}-key", role=role, scopes=list(scopes)), None)  # type: ignore[arg-type]
    return TestClient(_app(runtime), headers={"X-API-Key": key.key})


@pytest.fixture(scope="module")
def client(built: tuple[Runtime, ForecastResult]) -> Iterator[TestClient]:
    with _client(built[0]) as analyst:
        yield analyst


def _get(client: TestClient, url: str, **params: Any) -> Any:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_category_series_with_history_and_forecast(client: TestClient, built_shop: PlantedShop) -> None:
    page = _get(client, "/api/v1/forecasts", level="category")

    assert (page["as_of"], page["horizon_days"], page["level"], page["total"]) == ("2024-06-01", 28, "category", 3)
    totals = [item["forecast_units"] for item in page["items"]]
    assert totals == sorted(totals, reverse=True)
    for item in page["items"]:
        assert item["forecast_units"] == pytest.approx(sum(p["forecast"] for p in item["forecast"]))
        assert [p["day"] for p in item["forecast"]] == [str(date(2024, 6, 1) + timedelta(days=i)) for i in range(28)]
        row = built_shop.categories.index(item["key"])
        planted = built_shop.units[np.asarray(built_shop.category_of) == row].sum(axis=0)[-56:]
        assert [p["units"] for p in item["history"]] == planted.astype(int).tolist()


def test_one_product_by_key(client: TestClient, built: tuple[Runtime, ForecastResult]) -> None:
    key = "p003"
    expected = [r for r in built[1].forecasts.to_pylist() if r["key"] == key]

    page = _get(client, "/api/v1/forecasts", level="product", key=key)

    assert page["total"] == 1
    [item] = page["items"]
    assert (item["key"], item["title"], len(item["history"])) == (key, "Item p003", 56)
    assert [p["forecast"] for p in item["forecast"]] == pytest.approx([r["forecast"] for r in expected])
    assert [p["baseline"] for p in item["forecast"]] == pytest.approx([r["baseline"] for r in expected])


def test_paging_through_products(client: TestClient) -> None:
    first = _get(client, "/api/v1/forecasts", level="product", page_size=4)
    third = _get(client, "/api/v1/forecasts", level="product", page_size=4, page=3)

    assert first["total"] == 9 and len(first["items"]) == 4 and len(third["items"]) == 1
    assert first["items"][0]["forecast_units"] >= third["items"][0]["forecast_units"]


def test_backtest_report(client: TestClient, built: tuple[Runtime, ForecastResult]) -> None:
    report = _get(client, "/api/v1/forecasts/backtest")

    expected = built[1].report()["backtest"]
    assert report["backtest"]["windows"] == expected["windows"] == 3
    for level in ("product", "category"):
        mine = report["backtest"]["levels"][level]
        assert mine["model_wape"] == pytest.approx(expected["levels"][level]["model_wape"])
        assert mine["baseline_wape"] == pytest.approx(expected["levels"][level]["baseline_wape"])
        assert len(mine["windows"]) == 3
    assert report["timings"]["total_s"] > 0 and report["build_id"] >= 1


def test_stock_warnings(client: TestClient, built: tuple[Runtime, ForecastResult]) -> None:
    page = _get(client, "/api/v1/stock-warnings")

    expected = built[1].stock_warnings.to_pylist()
    assert page["total"] == len(expected) == 4  # 3 on hand, threshold 5: all four short at once
    assert [w["product_key"] for w in page["items"]] == [w["product_key"] for w in expected]
    assert all(w["crosses_on"] == "2024-06-01" and w["threshold"] == 5 for w in page["items"])


@pytest.mark.parametrize(
    ("params", "status", "where"),
    [
        ({"level": "brand"}, 422, ["query", "level"]),
        ({"page": 0}, 422, ["query", "page"]),
        ({"page_size": 501}, 422, ["query", "page_size"]),
        ({"key": ""}, 422, ["query", "key"]),
    ],
)
def test_bad_queries(client: TestClient, params: dict[str, Any], status: int, where: list[str]) -> None:
    response = client.get("/api/v1/forecasts", params=params)

    assert response.status_code == status and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"] == where


def test_an_unknown_key_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/forecasts", params={"level": "product", "key": "t:nothing"})

    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
    assert "t:nothing" in response.json()["detail"]


def test_who_may_read_forecasts(built: tuple[Runtime, ForecastResult]) -> None:
    runtime = built[0]
    with (
        _client(runtime, "marketer") as marketer,
        _client(runtime, "support", ("members:read",)) as support,
        _client(runtime, "analyst", ("kpis:read",)) as narrowed,
        TestClient(_app(runtime)) as anonymous,
    ):
        assert marketer.get("/api/v1/stock-warnings").status_code == 200
        assert support.get("/api/v1/stock-warnings").status_code == 403
        assert narrowed.get("/api/v1/forecasts/backtest").status_code == 403
        assert anonymous.get("/api/v1/forecasts").status_code == 401


def test_a_build_without_forecasts_is_404(tmp_path: Path, built_shop: PlantedShop) -> None:
    runtime = Runtime(make_settings(tmp_path / "home"))
    runtime.settings.home.mkdir(parents=True)
    runtime.store.migrate()
    try:
        with runtime.warehouse() as warehouse:
            load_shop(warehouse, built_shop)
        build_profiles(runtime, with_models=False)
        with _client(runtime) as client:
            responses = [
                client.get(url) for url in ("/api/v1/forecasts", "/api/v1/forecasts/backtest", "/api/v1/stock-warnings")
            ]
    finally:
        runtime.close()

    for response in responses:
        assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
        assert "no forecasts" in response.json()["detail"]
