"""`patron churn report` through Typer's CliRunner on a data directory with a published build."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner, Result

from patron.churn import ChurnResult
from patron.cli import churn
from patron.cli.main import app as main_app
from patron.runtime import Runtime
from tests.churn.conftest import publish_build
from tests.conftest import PG_URL


def _patron() -> typer.Typer:
    """The real `patron` app, with `churn` added the way main.py will register it if it is not there yet."""
    if not any(group.name == "churn" for group in main_app.registered_groups):
        main_app.add_typer(churn.app, name="churn")
    return main_app


def _run(runtime: Runtime, *args: str) -> Result:
    env = {
        "PATRON_HOME": str(runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": None,
    }
    return CliRunner().invoke(_patron(), ["churn", *args], env=env, catch_exceptions=False)


def test_report_as_json(runtime: Runtime, simulated_churn: ChurnResult) -> None:
    publish_build(runtime, simulated_churn)

    result = _run(runtime, "report", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "ok"
    assert body["metrics"]["model"]["auc"] == simulated_churn.report()["metrics"]["model"]["auc"]


def test_report_as_a_table_of_model_and_baselines(runtime: Runtime, simulated_churn: ChurnResult) -> None:
    publish_build(runtime, simulated_churn)

    result = _run(runtime, "report")

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    auc = simulated_churn.report()["metrics"]["model"]["auc"]
    for label in ("churn model", "BG/NBD P(no purchase)", "1 - P(alive)", "days since last purchase"):
        assert label in text
    assert f"{auc:.3f}" in text


def test_no_build_exits_1_with_a_message(runtime: Runtime) -> None:
    result = _run(runtime, "report")

    assert result.exit_code == 1
    assert "patron build" in result.output
