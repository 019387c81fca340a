"""`patron recs evaluate` end to end on a small CSV event log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from patron.cli.main import app

runner = CliRunner()


def _log(tmp_path: Path) -> Path:
    # two taste groups: users 0-19 like items a0-a9, users 20-39 like items b0-b9
    rng = np.random.default_rng(5)
    rows = []
    for u in range(40):
        group = "a" if u < 20 else "b"
        for i in rng.choice(10, size=6, replace=False):
            rows.append((f"u{u}", f"{group}{i}", 1.0, 1_600_000_000 + u * 60 + int(i), group))
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user", "item", "weight", "time", "category"]).to_csv(path, index=False)
    return path


def test_evaluate_prints_json_for_every_model(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.md"
    args = ["recs", "evaluate", "--dataset", str(_log(tmp_path)), "--protocol", "random", "--k", "3"]
    args += ["--models", "popularity,itemknn,ease,hybrid", "--json", "--report", str(report)]
    result = runner.invoke(app, args, env={"OPENBLAS_NUM_THREADS": "1"})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["protocol"] == "random" and out["k"] == 3 and out["repeats_counted"] is False
    assert out["evaluated_users"] == 40
    by_model = {r["model"]: r for r in out["results"]}
    assert set(by_model) == {"popularity", "itemknn", "ease", "hybrid"}
    for r in by_model.values():
        assert r["error"] is None
        assert 0 <= r["ndcg"] <= 1 and 0 <= r["coverage"] <= 1
    # the taste groups are learnable: item-kNN beats popularity, and its lists stay within one category
    assert by_model["itemknn"]["ndcg"] > by_model["popularity"]["ndcg"]
    assert by_model["itemknn"]["diversity"] < 0.2
    assert report.exists() and report.with_suffix(".svg").read_text().startswith("<svg")


def test_evaluate_rejects_an_unknown_protocol(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recs", "evaluate", "--dataset", str(_log(tmp_path)), "--protocol", "nope"])
    assert result.exit_code == 1
    assert "unknown protocol" in result.output


def test_evaluate_help_names_the_protocols() -> None:
    result = runner.invoke(app, ["recs", "evaluate", "--help"])
    assert result.exit_code == 0
    assert "ms-stratified" in result.output and "--search-budget" in result.output
