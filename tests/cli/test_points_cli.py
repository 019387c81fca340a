"""`patron points`: balance, history, adjust, activate and expire through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patron.cli.main import app
from patron.db.base import utcnow
from patron.loyalty.ledger_schemas import EarnRequest
from patron.loyalty.ledger_service import earn_points
from patron.runtime import Runtime
from tests.conftest import PG_URL, _reset_postgres, make_settings

Patron = Callable[..., Result]
pytestmark = pytest.mark.slow  # each test initialises a store through the CLI


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def patron(home: Path) -> Patron:
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
    return json.loads(result.stdout.splitlines()[-1])


def _earn(home: Path, member: str, points: int, reference: str, **fields: Any) -> None:
    runtime = Runtime(make_settings(home, database_url=PG_URL))
    try:
        earn_points(
            runtime.store, f"k-{reference}", member, EarnRequest(points=points, reference=reference, **fields), "t"
        )
    finally:
        runtime.close()


def test_adjust_then_balance_and_history(patron: Patron) -> None:
    adjusted = _json(
        patron("points", "adjust", "m-1", "25", "--reason", "goodwill", "--idempotency-key", "k1", "--json")
    )
    again = _json(patron("points", "adjust", "m-1", "25", "--reason", "goodwill", "--idempotency-key", "k1", "--json"))

    assert adjusted["kind"] == "adjust" and not adjusted["replayed"]
    assert again["replayed"] and again["id"] == adjusted["id"]
    balance = _json(patron("points", "balance", "m-1", "--json"))
    assert (balance["available"], balance["pending"]) == (25, 0)
    history = _json(patron("points", "history", "m-1", "--json"))
    assert history["total"] == 1 and history["items"][0]["memo"] == "goodwill"
    assert "Points of m-1" in patron("points", "balance", "m-1").stdout


def test_adjust_needs_a_reason_and_cannot_overdraw(patron: Patron) -> None:
    missing = patron("points", "adjust", "m-1", "5")
    assert missing.exit_code != 0
    overdraw = patron("points", "adjust", "m-1", "--reason", "fix", "--", "-5")
    assert overdraw.exit_code == 1
    assert "available points" in overdraw.output


def test_activate_and_expire_jobs(patron: Patron, home: Path) -> None:
    now = utcnow()
    _earn(home, "m-1", 40, "order-1", pending_until=now + timedelta(days=7), expires_at=now + timedelta(days=30))
    later = (now + timedelta(days=8)).isoformat()
    much_later = (now + timedelta(days=31)).isoformat()

    activated = _json(patron("points", "activate", "--as-of", later, "--json"))
    assert activated["lots"] == 1
    assert _json(patron("points", "balance", "m-1", "--json"))["available"] == 40
    expired = patron("points", "expire", "--as-of", much_later)
    assert expired.exit_code == 0 and "expire: 1 lots" in expired.stdout
    assert _json(patron("points", "balance", "m-1", "--json"))["available"] == 0


@pytest.mark.parametrize("command", ["balance", "history", "adjust", "expire", "activate"])
def test_every_command_has_help(command: str) -> None:
    shown = CliRunner().invoke(app, ["points", command, "--help"])
    assert shown.exit_code == 0 and "--json" in shown.stdout
