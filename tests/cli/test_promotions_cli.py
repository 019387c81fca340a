"""`patron promotions` through Typer's CliRunner against a per-test store (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patron.cli import promotions as promotions_cli
from patron.cli.common import close_runtimes
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY

Patron = Callable[..., Result]
TIERS = '{"tiers": [{"threshold": 200, "discount": 20}, {"threshold": 300, "discount": 40}]}'


@pytest.fixture
def patron(runtime: Runtime) -> Patron:
    """Run `patron promotions ...` on the test's data directory and store."""
    env = {
        "PATRON_HOME": str(runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": runtime.settings.database_url,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
    }

    def invoke(*args: str) -> Result:
        try:
            return CliRunner().invoke(promotions_cli.app, list(args), env=env, catch_exceptions=False)
        finally:
            close_runtimes()

    return invoke


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_a_template_issue_a_coupon_and_price_a_cart(patron: Patron, tmp_path: Path) -> None:
    added = as_json(patron("templates", "add", "--code", "MJ", "--name", "满减", "--kind", "threshold_tiers",
                           "--params", TIERS, "--json"))  # fmt: skip
    member_key = "m" + secrets.token_hex(8)
    coupon = as_json(patron("issue", "MJ", member_key, "--reason", "vip", "--json"))
    cart = tmp_path / "cart.json"
    cart.write_text(
        json.dumps(
            {
                "lines": [{"line_id": "1", "product": "p", "unit_price": "250", "quantity": 1}],
                "member_key": member_key,
                "coupons": [coupon["code"]],
            }
        )
    )

    priced = as_json(patron("price", str(cart), "--json"))
    table = patron("price", str(cart))
    listed = as_json(patron("templates", "list", "--json"))
    stats = as_json(patron("stats", "--json"))

    assert added["code"] == "MJ" and coupon["member_key"] == member_key
    assert (priced["discount"], priced["total"]) == ("20.00", "230.00")
    assert table.exit_code == 0 and "total 230.00" in table.stdout
    assert priced["rules"][0]["message"].endswith("spend 50.00 more to save 40.00")
    assert [t["code"] for t in listed] == ["MJ"]
    assert stats[0]["issued"] == 1


def test_bulk_codes_and_rewards(patron: Patron, tmp_path: Path) -> None:
    as_json(patron("templates", "add", "--code", "F5", "--name", "five", "--kind", "fixed", "--params",
                   '{"amount": 5}', "--json"))  # fmt: skip
    out = tmp_path / "codes.txt"

    batch = as_json(patron("codes", "F5", "--count", "1200", "--prefix", "CL", "--output", str(out), "--json"))
    reward = as_json(patron("rewards", "add", "--name", "five off", "--kind", "coupon", "--points", "100",
                            "--template", "F5", "--stock", "3", "--json"))  # fmt: skip
    listed = as_json(patron("rewards", "list", "--json"))

    written = out.read_text().split()
    assert batch["count"] == 1200 and len(set(written)) == 1200
    assert reward["template_code"] == "F5" and [r["name"] for r in listed] == ["five off"]


def test_bad_input_names_the_field(patron: Patron) -> None:
    bad_params = patron(
        "templates", "add", "--code", "P", "--name", "p", "--kind", "percent", "--params", '{"percent": 0}'
    )
    bad_kind = patron("templates", "add", "--code", "P", "--name", "p", "--kind", "bogo")
    unknown = patron("issue", "NOPE", "m" + "0" * 16)

    assert bad_params.exit_code == 1 and "params.percent" in bad_params.output
    assert bad_kind.exit_code == 1 and "kind" in bad_kind.output
    assert unknown.exit_code == 1 and "no promotion template" in unknown.output


def test_every_command_has_help(patron: Patron) -> None:
    for args in (["--help"], ["templates", "add", "--help"], ["codes", "--help"], ["price", "--help"],
                 ["rewards", "add", "--help"], ["stats", "--help"], ["issue", "--help"]):  # fmt: skip
        assert patron(*args).exit_code == 0
