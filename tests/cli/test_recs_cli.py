"""`patron recs`: train, versions, placements, activate, rollback, compare and recommend, on a small shop."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patron.cli.main import app
from patron.recs.tracking import EventIn, record_events
from patron.runtime import Runtime
from tests.conftest import PG_URL, _reset_postgres, make_settings

Patron = Callable[..., Result]
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# four customers, five products; 17850 and 13047 share three products
BASKETS = {
    "17850": ["85123A", "71053", "22633"],
    "13047": ["85123A", "71053", "84879"],
    "12583": ["22633", "21756"],
    "15100": ["84879", "21756", "85123A"],
}


def _rows() -> list[str]:
    rows, invoice = [], 536_000
    for day, (customer, items) in enumerate(BASKETS.items(), start=1):
        invoice += 1
        for item in items:
            rows.append(f"{invoice},{item},ITEM {item},2,2011-11-{day:02d} 10:00:00,2.50,{customer}.0,United Kingdom")
    return rows


@pytest.fixture
def patron(tmp_path: Path) -> Patron:
    home = tmp_path / "home"
    if PG_URL:
        runtime = Runtime(make_settings(home, database_url=PG_URL))
        try:
            runtime.store.migrate()
            _reset_postgres(runtime)
        finally:
            runtime.close()
    env = {"PATRON_HOME": str(home), "PATRON_ENV": "development", "PATRON_DATABASE_URL": PG_URL}
    env |= {"PATRON_WAREHOUSE_URL": None, "PATRON_MASTER_KEY": None}
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _fill(patron: Patron, tmp_path: Path) -> None:
    source = tmp_path / "shop.csv.gz"
    source.write_bytes(gzip.compress(("\n".join([HEADER, *_rows()]) + "\n").encode()))
    for step in (("import", "online-retail", str(source)), ("build",)):
        assert patron(*step).exit_code == 0


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_recs_command_has_help(patron: Patron) -> None:
    for command in ("train", "versions", "placements", "activate", "rollback", "compare", "recommend"):
        result = patron("recs", command, "--help")
        assert result.exit_code == 0 and "--json" in result.output, command


@pytest.mark.slow
def test_train_activate_recommend_split_compare_and_roll_back(patron: Patron, tmp_path: Path) -> None:
    _fill(patron, tmp_path)
    popular = _json(patron("recs", "train", "popularity", "--json"))
    knn = _json(patron("recs", "train", "itemknn", "--params", '{"neighbours": 10}', "--json"))
    listed = _json(patron("recs", "versions", "--json"))
    assert popular["status"] == knn["status"] == "ready" and knn["params"]["neighbours"] == 10
    assert {v["id"] for v in listed} == {popular["id"], knn["id"]}

    placed = _json(patron("recs", "activate", "home", "--version", popular["id"], "--kind", "member", "--json"))
    assert placed["variants"] == [{"name": "main", "version_id": popular["id"], "share_bp": 10_000}]
    split = patron(
        "recs", "activate", "home", "--variant", f"control={popular['id']}:5000",
        "--variant", f"knn={knn['id']}:5000", "--json",
    )  # fmt: skip
    assert [v["share_bp"] for v in _json(split)["variants"]] == [5_000, 5_000]

    runtime = Runtime(make_settings(tmp_path / "home", database_url=PG_URL))
    try:
        from sqlalchemy import select

        from patron.members.models import MemberIdentity

        with runtime.store.session() as sess:
            keys = sorted(sess.scalars(select(MemberIdentity.member_key)))
        served = {key: _json(patron("recs", "recommend", key, "--k", "2", "--json")) for key in keys}
        assert all(s["items"] and s["variant"] in {"control", "knn"} for s in served.values())
        assert all(i["reason"] for s in served.values() for i in s["items"])
        record_events(
            runtime.store,
            [
                EventIn(placement="home", variant=s["variant"], unit_id=k, item_id=s["items"][0]["item_id"],
                        kind="impression", idempotency_key=f"{k}-imp")
                for k, s in served.items()
            ],
        )  # fmt: skip
    finally:
        runtime.close()

    report = _json(patron("recs", "compare", "home", "--json"))
    assert report["control"] == "control"
    assert sum(v["impressions"] for v in report["variants"]) == len(keys)
    table = patron("recs", "compare", "home")
    assert table.exit_code == 0 and "control" in table.output

    rolled = _json(patron("recs", "rollback", "home", "--json"))
    assert [v["name"] for v in rolled["variants"]] == ["main"]
    shown = _json(patron("recs", "placements", "--json"))
    assert [(p["name"], p["revision"]) for p in shown] == [("home", 3)]


def test_bad_input_is_a_one_line_error(patron: Patron) -> None:
    unknown = patron("recs", "train", "crystal_ball")
    not_json = patron("recs", "train", "popularity", "--params", "{k")
    both = patron("recs", "activate", "home")
    nothing = patron("recs", "rollback", "home")

    assert unknown.exit_code == 1 and "unknown model" in unknown.output
    assert not_json.exit_code == 1 and "(params)" in not_json.output
    assert both.exit_code == 1 and "--version" in both.output
    assert nothing.exit_code == 1 and "no placement" in nothing.output
