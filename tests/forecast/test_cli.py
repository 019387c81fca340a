"""`patron forecasts ...` through Typer's CliRunner, reading the current build of a data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from patron.cli import forecasts
from patron.cli.main import app as main_app
from patron.forecast.step import ForecastResult
from patron.runtime import Runtime
from tests.conftest import make_settings


def _patron() -> typer.Typer:
    """The real `patron` app, with `forecasts` added the way main.py registers it if it is not there yet."""
    if not any(group.name == "forecasts" for group in main_app.registered_groups):
        main_app.add_typer(forecasts.app, name="forecasts")
    return main_app


def _env(home: Path) -> dict[str, str | None]:
    return {
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": None,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": None,
    }


def _run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(_patron(), ["forecasts", *args], env=_env(home), catch_exceptions=False)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def home(built: tuple[Runtime, ForecastResult]) -> Path:
    return built[0].settings.home


def test_show_lists_the_categories_and_one_product(home: Path, built: tuple[Runtime, ForecastResult]) -> None:
    listed = _json(_run(home, "show", "--json"))
    one = _json(_run(home, "show", "--level", "product", "--key", "p002", "--json"))
    table = _run(home, "show", "--level", "product", "--key", "p002")

    assert listed["level"] == "category" and {i["key"] for i in listed["items"]} == {"c0", "c1", "c2"}
    [item] = one["items"]
    expected = [r["forecast"] for r in built[1].forecasts.to_pylist() if r["key"] == "p002"]
    assert [p["forecast"] for p in item["forecast"]] == pytest.approx(expected)
    assert table.exit_code == 0 and "p002" in table.stdout and "2024-06-28" in table.stdout


def test_backtest_as_table_and_json(home: Path, built: tuple[Runtime, ForecastResult]) -> None:
    report = _json(_run(home, "backtest", "--json"))
    table = _run(home, "backtest")

    expected = built[1].report()["backtest"]["levels"]
    for level in ("product", "category"):
        assert report["backtest"]["levels"][level]["model_wape"] == pytest.approx(expected[level]["model_wape"])
    assert table.exit_code == 0
    assert "model WAPE" in table.stdout and f"{expected['category']['model_wape']:.1%}" in table.stdout


def test_stock_warnings(home: Path) -> None:
    page = _json(_run(home, "stock", "--json"))
    table = _run(home, "stock", "--limit", "2")

    assert page["total"] == 4 and {w["product_key"] for w in page["items"]} == {"p000", "p001", "p002", "p003"}
    assert table.exit_code == 0 and "4 products warned, 2 shown" in " ".join(table.stdout.split())


def test_an_unknown_key_and_a_missing_build_exit_1(home: Path, tmp_path: Path) -> None:
    unknown = _run(home, "show", "--level", "product", "--key", "t:none")
    empty_home = tmp_path / "empty"
    empty_home.mkdir()
    empty = Runtime(make_settings(empty_home))
    try:
        empty.store.migrate()
    finally:
        empty.close()
    nothing = _run(empty_home, "backtest")

    assert unknown.exit_code == 1 and "t:none" in unknown.output
    assert nothing.exit_code == 1 and "nothing built yet" in nothing.output
