"""`patron clv fit` through Typer's CliRunner, on the CDNOW summaries and on broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner, Result

from patron.cli import clv
from patron.cli.main import app as main_app
from tests.conftest import shared_data


def _patron() -> typer.Typer:
    """The real `patron` app, with `clv` added the way main.py will register it if it is not there yet."""
    if not any(group.name == "clv" for group in main_app.registered_groups):
        main_app.add_typer(clv.app, name="clv")
    return main_app


def _run(*args: str) -> Result:
    return CliRunner().invoke(_patron(), ["clv", *args], catch_exceptions=False)


def test_bgnbd_fit_prints_the_published_cdnow_parameters_as_json() -> None:
    """Fader, Hardie & Lee (2005): r 0.2426, alpha 4.4135, a 0.7929, b 2.4258, LL -9582.4."""
    result = _run("fit", str(shared_data("cdnow/cdnow_customers_summary.csv")), "--model", "bgnbd", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "bgnbd" and body["customers"] == 2357
    assert body["params"] == pytest.approx({"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}, abs=5e-5)
    assert body["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert body["convergence"]["converged"] is True


def test_pareto_fit_as_json() -> None:
    """Schmittlein et al. (1987), fitted by Fader, Hardie & Lee (2005): r 0.553, alpha 10.578, s 0.606, beta 11.669."""
    result = _run("fit", str(shared_data("cdnow/cdnow_customers_summary.csv")), "--model", "pareto", "--json")

    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["params"]
    assert params == pytest.approx({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, rel=2e-3)


def test_gammagamma_reads_hardies_column_names() -> None:
    """Fader, Hardie & Lee (2005), "RFM and CLV": p 6.25, q 3.74, v 15.44 on the file with x, t_x, T, zbar."""
    path = shared_data("cdnow/cdnow_customers_summary_with_transactions.csv")

    result = _run("fit", str(path), "--model", "gammagamma", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["customers"] == 946
    assert body["params"] == pytest.approx({"p": 6.25, "q": 3.74, "v": 15.44}, rel=2e-3)


def test_a_lifetimes_csv_with_an_unnamed_index_column_and_a_table(tmp_path: Path) -> None:
    frame = pd.read_csv(shared_data("cdnow/cdnow_customers_summary.csv")).drop(columns="ID")
    path = tmp_path / "summary.csv"
    frame.to_csv(path)  # pandas writes the index as an unnamed first column
    assert pd.read_csv(path).columns[0] == "Unnamed: 0"

    result = _run("fit", str(path))

    assert result.exit_code == 0, result.output
    assert "bgnbd fitted on 2,357 customers" in result.stdout and "-9,582.4" in result.stdout


def test_a_missing_column_is_named_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    path.write_text("frequency,recency,T\n1,2.0,3.0\n0,0,4.0\n")

    result = _run("fit", str(path), "--model", "gammagamma", "--json")

    assert result.exit_code == 1
    assert "monetary_value" in result.stderr and result.stdout == ""


def test_bad_values_and_missing_files_are_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("frequency,recency,T\n1,5.0,3.0\n")

    recency_after_t = _run("fit", str(bad))
    no_file = _run("fit", str(tmp_path / "absent.csv"))
    unknown_model = CliRunner().invoke(_patron(), ["clv", "fit", str(bad), "--model", "mbgnbd"])

    assert recency_after_t.exit_code == 1 and "recency" in recency_after_t.stderr
    assert no_file.exit_code == 1 and "summary" in no_file.stderr
    assert unknown_model.exit_code == 2


def test_the_sub_app_alone_and_its_help() -> None:
    runner = CliRunner()

    group = runner.invoke(clv.app, ["--help"])
    command = runner.invoke(_patron(), ["clv", "fit", "--help"])

    assert group.exit_code == 0 and "fit" in group.stdout
    assert command.exit_code == 0 and "bgnbd" in command.stdout and "--json" in command.stdout
