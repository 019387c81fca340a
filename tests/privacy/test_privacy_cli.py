"""`patron privacy`: consents and data-subject requests through the real command line."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from patron.audit.service import list_audit
from patron.cli.main import app
from patron.members.identity import resolve_member_keys
from patron.members.vault_store import read_personal, write_personal
from patron.runtime import Runtime
from tests.conftest import PG_URL, _reset_postgres, make_settings
from tests.privacy.conftest import PERSON

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


def _runtime(home: Path) -> Runtime:
    return Runtime(make_settings(home, database_url=PG_URL).model_copy(update={"master_key": None}))


@pytest.fixture
def member(patron: Patron, home: Path) -> str:
    """A member with personal data, written with the key `patron init` made."""
    runtime = _runtime(home)
    try:
        key = str(resolve_member_keys(runtime.store, "crm", pl.Series(["C-1"]))["member_key"][0])
        write_personal(runtime.store, runtime.cipher, [(key, dict(PERSON))])
    finally:
        runtime.close()
    return key


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.splitlines()[-1])


def test_consent_set_show_and_history(patron: Patron, member: str) -> None:
    granted = _json(
        patron("privacy", "consent", "set", member, "marketing_sms", "granted", "--evidence", "v3", "--json")
    )
    patron("privacy", "consent", "set", member, "marketing_sms", "withdrawn")
    shown = _json(patron("privacy", "consent", "show", member, "--json"))
    history = _json(patron("privacy", "consent", "history", member, "--purpose", "marketing_sms", "--json"))

    assert granted["state"] == "granted" and granted["source"] == "cli"
    states = {c["purpose"]: c["state"] for c in shown["consents"]}
    assert states["marketing_sms"] == "withdrawn" and states["personalization"] == "granted"
    assert [e["state"] for e in history["items"]] == ["withdrawn", "granted"]
    assert all(e["actor"].startswith("cli:") for e in history["items"])
    assert "Consents of" in patron("privacy", "consent", "show", member).stdout


def test_bad_consent_input_exits_naming_the_problem(patron: Patron, member: str) -> None:
    unknown = patron("privacy", "consent", "set", member, "telepathy", "granted")
    personal = patron("privacy", "consent", "set", member, "analytics", "denied", "--evidence", "mail me@x.org")
    nothing = patron("privacy", "consent", "set", member, "marketing_push", "withdrawn")

    assert unknown.exit_code == 2 and "telepathy" in unknown.output
    assert personal.exit_code == 1 and "(evidence)" in personal.output
    assert nothing.exit_code == 1 and "nothing to withdraw" in nothing.output


def test_requests_are_filed_listed_started_and_rejected(patron: Patron, member: str) -> None:
    created = _json(patron("privacy", "requests", "create", "restriction", member, "--note", "by letter", "--json"))
    late = _json(
        patron("privacy", "requests", "create", "export", member, "--received", "2020-01-01T00:00:00", "--json")
    )
    started = _json(patron("privacy", "requests", "start", str(created["id"]), "--json"))
    overdue = _json(patron("privacy", "requests", "list", "--due", "overdue", "--json"))
    rejected = _json(patron("privacy", "requests", "reject", str(late["id"]), "--reason", "not verified", "--json"))
    table = patron("privacy", "requests", "list").stdout

    assert created["status"] == "received" and created["days_left"] == 30
    assert started["status"] == "in_progress"
    assert [r["id"] for r in overdue["items"]] == [late["id"]]
    assert rejected["status"] == "rejected"
    assert "2 requests" in table


def test_export_writes_the_document_to_a_private_file(patron: Patron, member: str, tmp_path: Path) -> None:
    out = tmp_path / "export.json"

    done = _json(patron("privacy", "export", member, "--out", str(out), "--json"))

    document = json.loads(out.read_text(encoding="utf-8"))
    assert done["request"]["status"] == "completed" and done["export"] is None
    assert document["personal"] == PERSON and document["member_key"] == member
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_correct_restrict_lift_and_erase(patron: Patron, member: str, home: Path) -> None:
    corrected = _json(patron("privacy", "correct", member, "--phone", "+49 30 1234567", "--json"))
    bad = patron("privacy", "correct", member, "--birthday", "yesterday")
    restricted = _json(patron("privacy", "restrict", member, "--json"))
    shown = _json(patron("privacy", "consent", "show", member, "--json"))
    lifted = patron("privacy", "lift", member)
    unconfirmed = patron("privacy", "erase", member)
    erased = _json(patron("privacy", "erase", member, "--yes", "--json"))
    again = patron("privacy", "erase", member, "--yes")

    assert corrected["request"]["outcome"] == {"fields": ["phone"]}
    assert bad.exit_code == 1 and "(birthday)" in bad.output
    assert restricted["request"]["outcome"] == {"restricted": True} and shown["restriction"]["reason"] == "request"
    assert lifted.exit_code == 0
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.output
    assert erased["request"]["outcome"]["identity_removed"] is True
    assert again.exit_code == 1 and "not known" in again.output
    runtime = _runtime(home)
    try:
        assert read_personal(runtime.store, runtime.cipher, member) is None
        actions = {a.action: a for a in list_audit(runtime.store, page_size=100).items}
    finally:
        runtime.close()
    assert {"privacy.correction", "privacy.restriction", "privacy.lift_restriction", "privacy.erasure"} <= set(actions)
    assert "1234567" not in json.dumps(actions["privacy.correction"].details)
