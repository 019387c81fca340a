"""`patron loyalty`: tiers, rules, dry runs and jobs through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from patron.cli.main import app
from patron.runtime import Runtime
from tests.conftest import PG_URL, _reset_postgres, make_settings

Patron = Callable[..., Result]
MEMBER = "m00000000000000f6"


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
    env = {
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": None,
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


LOYALTY = _commands(get_command(app).commands["loyalty"], ("loyalty",))  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", LOYALTY, ids=" ".join)
def test_every_loyalty_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_tiers_and_rules_are_added_and_listed(patron: Patron) -> None:
    tier = _json(patron("loyalty", "tiers", "add", "--code", "gold", "--name", "金卡", "--threshold", "1000",
                        "--multiplier", "1.5", "--coupon", "gold-welcome", "--free-shipping", "--json"))  # fmt: skip
    base = _json(
        patron("loyalty", "rules", "add", "--name", "base", "--kind", "base", "--points-per-unit", "1", "--json")
    )
    day = _json(patron("loyalty", "rules", "add", "--name", "会员日", "--kind", "multiplier", "--scope", "member_day",
                       "--multiplier", "2", "--day-of-month", "18", "--json"))  # fmt: skip

    assert (tier["code"], tier["coupons"], tier["free_shipping"]) == ("gold", ["gold-welcome"], True)
    assert [t["code"] for t in _json(patron("loyalty", "tiers", "list", "--json"))] == ["gold"]
    assert [r["name"] for r in _json(patron("loyalty", "rules", "list", "--json"))] == [base["name"], day["name"]]
    table = patron("loyalty", "rules", "list")
    assert "x2" in table.stdout and "day 18" in table.stdout


def test_a_bad_rule_names_its_field(patron: Patron) -> None:
    missing = patron("loyalty", "rules", "add", "--name", "c", "--kind", "multiplier", "--scope", "category",
                     "--multiplier", "2")  # fmt: skip
    bad_kind = patron("loyalty", "rules", "add", "--name", "c", "--kind", "bonus")

    assert missing.exit_code == 1 and "(match)" in missing.output
    assert bad_kind.exit_code == 1 and "(kind)" in bad_kind.output


def test_a_dry_run_reads_an_order_file_and_explains(patron: Patron, tmp_path: Path) -> None:
    patron("loyalty", "rules", "add", "--name", "base", "--kind", "base", "--points-per-unit", "2")
    order = tmp_path / "order.json"
    lines = [{"sku": "tea", "amount": "10.99"}, {"sku": "cup", "amount": "5.50"}]
    order.write_text(
        json.dumps({"order_key": "o-1", "member_key": MEMBER, "paid_at": "2026-06-18T12:00:00+08:00", "lines": lines})
    )

    explained = _json(patron("loyalty", "dry-run", str(order), "--json"))
    shown = patron("loyalty", "dry-run", str(order))
    not_json = tmp_path / "bad.json"
    not_json.write_text("{")
    refused = patron("loyalty", "dry-run", str(not_json))

    assert explained["points"] == 21 + 11
    assert "would earn 32 point(s)" in shown.stdout
    assert refused.exit_code == 1 and "not JSON" in refused.output


def test_jobs_list_run_and_run_due(patron: Patron) -> None:
    listed = _json(patron("loyalty", "jobs", "list", "--json"))
    ran = _json(patron("loyalty", "jobs", "run", "tier-reevaluation", "--json"))
    due = _json(patron("loyalty", "jobs", "run-due", "--json"))
    again = _json(patron("loyalty", "jobs", "run-due", "--json"))
    scheduled = _json(patron("loyalty", "scheduler", "--every", "1", "--iterations", "1", "--json"))
    unknown = patron("loyalty", "jobs", "run", "member-day")

    assert {job["name"] for job in listed} == {
        "points-activation",
        "points-expiry",
        "tier-reevaluation",
        "coupon-expiry",
    }
    assert (ran["status"], ran["trigger"], ran["result"]) == ("succeeded", "manual", 0)
    assert sorted(run["name"] for run in due if run["name"] != "retention") == [
        "coupon-expiry",
        "points-activation",
        "points-expiry",
        "tier-reevaluation",
    ]
    assert again == [] and scheduled == []
    assert unknown.exit_code == 1 and "no job 'member-day'" in unknown.output
