"""`patron retention`: show, dry run and run through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import PG_URL
from typer.main import get_command
from typer.testing import CliRunner, Result

from patron.audit.models import AuditEntry
from patron.cli.main import app
from patron.db.base import utcnow
from patron.recs.registry_models import RecEvent
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY

Patron = Callable[..., Result]


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


RETENTION = _commands(get_command(app).commands["retention"], ("retention",))  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", RETENTION, ids=" ".join)
def test_every_retention_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.fixture
def patron(runtime: Runtime) -> Patron:
    env = {
        "PATRON_HOME": str(runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
        "PATRON_RETENTION_DAYS": None,
    }

    def invoke(*args: str, **extra: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env | extra, catch_exceptions=False)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _plant(runtime: Runtime) -> None:
    now = utcnow()
    with runtime.store.session() as session:
        for name, age in (("old", 400), ("young", 300)):
            at = now - timedelta(days=age)
            session.add(
                RecEvent(
                    placement="home",
                    variant="a",
                    unit_id="s1",
                    item_id="p1",
                    kind="impression",
                    occurred_at=at,
                    idempotency_key=name,
                )
            )


def test_show_lists_every_category_with_its_period(patron: Patron) -> None:
    shown = _json(patron("retention", "show", "--json"))
    overridden = _json(patron("retention", "show", "--json", PATRON_RETENTION_DAYS='{"rec_events": 7}'))
    table = patron("retention", "show")

    days = {c["category"]: c["days"] for c in shown["categories"]}
    assert days["rec_events"] == 395 and days["audit_log"] is None
    assert {c["category"]: c["days"] for c in overridden["categories"]}["rec_events"] == 7
    assert shown["schedule"] == "daily at 02:30" and shown["runs"] == []
    assert table.exit_code == 0 and "inactive_members" in table.stdout


def test_a_dry_run_then_a_run_of_one_category(patron: Patron, runtime: Runtime) -> None:
    _plant(runtime)

    dry = _json(patron("retention", "run", "--dry-run", "--category", "rec_events", "--json"))
    done = _json(patron("retention", "run", "--category", "rec_events", "--json"))
    shown = _json(patron("retention", "show", "--json"))
    refused = patron("retention", "run", "--category", "audit_log")

    assert [(r["category"], r["affected"]) for r in dry["report"]["results"]] == [("rec_events", 1)]
    assert dry["run"] is None
    assert [(r["category"], r["affected"]) for r in done["report"]["results"]] == [("rec_events", 1)]
    assert (done["run"]["status"], done["run"]["result"]) == ("succeeded", 1)
    assert [run["id"] for run in shown["runs"]] == [done["run"]["id"]]
    with runtime.store.session() as session:
        assert list(session.scalars(select(RecEvent.idempotency_key))) == ["young"]
        details = session.scalars(select(AuditEntry.details).where(AuditEntry.action == "retention.run")).one()
    assert details == {"counts": {"rec_events": 1}}
    assert refused.exit_code == 1 and "no purged category 'audit_log'" in refused.output


def test_the_scheduled_run_runs_once(patron: Patron) -> None:
    first = _json(patron("retention", "run", "--scheduled", "--json"))
    again = _json(patron("retention", "run", "--scheduled", "--json"))
    mixed = patron("retention", "run", "--scheduled", "--dry-run")

    assert first["run"]["trigger"] == "schedule" and first["run"]["status"] == "succeeded"
    assert again["run"] is None
    assert mixed.exit_code == 2


def test_a_bad_period_in_the_environment_is_refused(patron: Patron) -> None:
    result = patron("retention", "show", PATRON_RETENTION_DAYS='{"audit_log": 30}')

    assert result.exit_code == 1
    assert "audit_log, which has no period" in " ".join(result.output.split())
