"""The forecasts page: the chosen series' history and forecast, the backtest, low-stock warnings, access."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from patron.analytics.artefacts import reader_for
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console.i18n import Translator
from patron.forecast.schemas import ForecastSeries
from patron.forecast.service import forecast_page, forecast_report, stock_warning_page
from patron.runtime import Runtime
from tests.console.browsing import chart, settle, sign_in
from tests.console.clients import page_data, signed_in
from tests.console.conftest import PASSWORD, Shots, copy_of_build

pytestmark = pytest.mark.slow

OpenPage = Callable[..., Page]
EN, ZH = Translator("en"), Translator("zh-CN")
FORECAST_FILES = ("forecast.json", "forecasts.parquet", "demand_history.parquet", "stock_warnings.parquet")


def _build_dir(runtime: Runtime) -> Path:
    return Path(reader_for(runtime.settings.artefact_dir).manifest["path"])


def _expected_chart(series: ForecastSeries) -> dict[str, list[object]]:
    ahead = len(series.forecast)
    return {
        "days": [p.day.isoformat() for p in series.history] + [p.day.isoformat() for p in series.forecast],
        "history": [p.units for p in series.history] + [None] * ahead,
        "forecast": [None] * len(series.history) + [round(p.forecast, 3) for p in series.forecast],
    }


def test_page_draws_the_largest_category_and_lists_backtest_and_warnings(forecast_runtime: Runtime) -> None:
    reader = reader_for(forecast_runtime.settings.artefact_dir)
    build_dir = Path(reader.manifest["path"])
    report = forecast_report(build_dir, reader.build_id)
    largest = forecast_page(build_dir, "category", page_size=1).items[0]
    warnings = stock_warning_page(build_dir).items
    with signed_in(forecast_runtime, "marketer") as client:
        html = client.get("/forecasts").text

    drawn = page_data(html)["forecast-chart"]
    assert {name: drawn[name] for name in ("days", "history", "forecast")} == _expected_chart(largest)
    assert f'data-series="{largest.key}"' in html
    for level, score in report.backtest.levels.items():
        row = re.search(rf'<tr data-level="{level}".*?</tr>', html, re.S)
        assert row is not None, level
        model = "—" if score.model_wape is None else f"{score.model_wape * 100:.1f}%"
        assert f'data-wape="model">{model}<' in row.group(0)
    assert warnings, "the three best sellers are nearly out of stock"
    rows = re.findall(r'<tr data-product="([^"]+)">.*?data-crosses-on>([^<]+)<', html, re.S)
    assert rows == [(w.product_key, w.crosses_on.isoformat()) for w in warnings]
    assert f'data-warnings="{len(warnings)}"' in html
    assert 'aria-current="page" data-nav="forecasts"' in html


def test_series_and_level_selectors(forecast_runtime: Runtime) -> None:
    build_dir = _build_dir(forecast_runtime)
    second = forecast_page(build_dir, "category", page_size=2).items[1]
    product = forecast_page(build_dir, "product", page_size=1).items[0]
    with signed_in(forecast_runtime, language="zh-CN") as client:
        chosen = client.get("/forecasts", params={"key": second.key})
        products = client.get("/forecasts", params={"level": "product"})
        unknown = client.get("/forecasts", params={"level": "<shop>", "key": "no-such-thing"})

    assert page_data(chosen.text)["forecast-chart"]["history"][: len(second.history)] == [
        p.units for p in second.history
    ]
    assert f'<option value="{second.key}" selected>' in chosen.text
    assert f'data-series="{product.key}"' in products.text
    assert unknown.status_code == 200
    ignored = ZH("form.ignored", field=ZH("forecasts.level_label"), value="<shop>")
    assert ignored.replace("<", "&lt;").replace(">", "&gt;") in unknown.text
    assert ZH("forecasts.unknown_key", key="no-such-thing") in unknown.text


def test_access_follows_the_role(forecast_runtime: Runtime) -> None:
    with signed_in(forecast_runtime, "support") as client:
        home, page = client.get("/").text, client.get("/forecasts")

    assert 'data-nav="forecasts"' not in home
    assert page.status_code == 403


def test_builds_without_forecasts_and_no_build_say_so(
    events_runtime: Runtime, runtime: Runtime, tmp_path: Path
) -> None:
    plain = copy_of_build(events_runtime, tmp_path / "plain")
    for name in FORECAST_FILES:
        (_build_dir(plain) / name).unlink(missing_ok=True)
    create_operator(runtime.store, OperatorCreate(username="admin", password=PASSWORD, role="admin"))
    with signed_in(plain) as client:
        without = client.get("/forecasts").text
    with signed_in(runtime) as client:
        nothing = client.get("/forecasts").text
    plain.close()

    assert 'data-state="no-forecasts"' in without and EN("forecasts.none_body") in without
    assert 'id="page-data"' not in without and "echarts.min.js" not in without
    assert 'data-state="no-build"' in nothing


@pytest.mark.browser
def test_forecast_chart_follows_the_selectors_in_both_languages(
    page_factory: OpenPage, shots: Shots, forecast_runtime: Runtime, forecast_server: str
) -> None:
    build_dir = _build_dir(forecast_runtime)
    categories = forecast_page(build_dir, "category", page_size=2).items
    warnings = stock_warning_page(build_dir).items
    page = page_factory(base_url=forecast_server)
    problems = sign_in(page, "/forecasts", username="analyst")

    drawn = chart(page, "#forecast-chart")
    assert drawn["types"] == ["line", "line", "line"]
    assert drawn["data"][0] == _expected_chart(categories[0])["history"]
    expect(page.locator("table[data-table=stock-warnings] tbody tr")).to_have_count(len(warnings))
    expect(page.locator("table[data-table=backtest] tbody tr")).to_have_count(2)
    settle(page)
    shots.take(page, "forecasts")

    page.select_option("select[name=key]", categories[1].key)
    page.wait_for_url(f"**/forecasts?level=category&key={categories[1].key}")
    assert chart(page, "#forecast-chart")["data"][1] == _expected_chart(categories[1])["forecast"]
    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("需求预测")
    expect(page.locator("[data-section=stock] h2")).to_have_text("低库存预警")
    page.select_option("select[name=level]", "product")
    page.wait_for_url("**/forecasts?level=product")  # the category's key is dropped, not carried over
    expect(page.locator("[data-alert=ignored]")).to_have_count(0)
    chart(page, "#forecast-chart")
    settle(page)
    shots.take(page, "forecasts-products-zh")
    assert problems == []
