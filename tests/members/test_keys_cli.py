"""`patron keys`: status, rotate, retire and generate through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patron.cli.main import app
from patron.members.vault_store import read_personal, write_personal
from patron.runtime import Runtime
from patron.settings import parse_keyring
from tests.conftest import PG_URL, _reset_postgres
from tests.members.conftest import add_members, person, settings_for

Patron = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def patron(home: Path) -> Patron:
    """Run `patron ...` against this test's data directory (keyring in its key file)."""
    if PG_URL:
        runtime = Runtime(settings_for(home))
        try:
            runtime.store.migrate()
            _reset_postgres(runtime)
        finally:
            runtime.close()
    env = {"PATRON_HOME": str(home), "PATRON_ENV": "development", "PATRON_DATABASE_URL": PG_URL}
    env |= {"PATRON_MASTER_KEY": None, "PATRON_WAREHOUSE_URL": None}
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", [(), ("status",), ("rotate",), ("retire",), ("generate",)])
def test_every_keys_command_has_help(patron: Patron, command: tuple[str, ...]) -> None:
    result = patron("keys", *command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output) > 200


def test_status_rotate_and_retire_from_the_command_line(patron: Patron, home: Path, tmp_path: Path) -> None:
    assert patron("init").exit_code == 0
    rt = Runtime(settings_for(home))
    try:
        keys = add_members(rt, 5)
        write_personal(rt.store, rt.cipher, [(k, person(i)) for i, k in enumerate(keys)])
    finally:
        rt.close()
    first = _json(patron("keys", "status", "--json"))
    (old,) = first["keys"]
    assert (old["active"], old["member_keys"], old["system_keys"], first["pending"]) == (True, 5, 3, 0)

    new_key = tmp_path / "new.key"
    new_key.write_text(patron("keys", "generate").stdout)
    rotated = _json(patron("keys", "rotate", "--new-key-file", str(new_key), "--json"))
    assert rotated["complete"] and rotated["created"] and rotated["previous"] == [old["key_id"]]
    assert parse_keyring((home / "master.key").read_text())[0] == parse_keyring(new_key.read_text())[0]

    refused = patron("keys", "retire", rotated["target"])
    assert refused.exit_code == 1 and "is the active key" in " ".join(refused.stderr.split())
    shown = patron("keys", "status")
    assert shown.exit_code == 0 and rotated["target"] in shown.stderr and "active" in shown.stderr
    assert _json(patron("keys", "retire", old["key_id"], "--json")) == {
        "retired": old["key_id"],
        "removed_from_key_file": True,
    }
    last = _json(patron("keys", "status", "--json"))
    assert [(k["key_id"], k["member_keys"]) for k in last["keys"]] == [(rotated["target"], 5)]
    again = patron("keys", "rotate")  # nothing unfinished: a new random key
    assert again.exit_code == 0 and "Rotated to the new master key" in " ".join(again.stderr.split())

    rt = Runtime(settings_for(home))
    try:
        assert [read_personal(rt.store, rt.cipher, k) for k in keys] == [person(i) for i in range(5)]
    finally:
        rt.close()


def test_a_bad_new_key_file_is_refused_before_anything_changes(patron: Patron, home: Path, tmp_path: Path) -> None:
    assert patron("init").exit_code == 0
    ring = (home / "master.key").read_text()
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")

    result = patron("keys", "rotate", "--new-key-file", str(bad))

    assert result.exit_code == 1 and "not valid base64" in result.stderr
    assert (home / "master.key").read_text() == ring
