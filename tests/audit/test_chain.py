"""The audit log's hash chain: intact logs verify, every kind of tampering is caught."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from patron.audit.chain import entry_digest, verify_chain
from patron.audit.service import record
from patron.cli.main import app
from patron.runtime import Runtime
from tests.conftest import PG_URL, make_settings


def _fill(runtime: Runtime, n: int) -> None:
    for i in range(n):
        record(
            runtime.store, f"op{i % 3}", "member.personal_read", f"m{i:016x}", source_ip="10.0.0.1", details={"n": i}
        )


def _tamper(runtime: Runtime, sql: str, **params: object) -> None:
    """Change the log as someone with database rights would: switch the guard off, write, switch it on."""
    with runtime.store.engine.begin() as conn:
        if runtime.store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            conn.execute(text(sql), params)


def _verify(runtime: Runtime) -> dict[str, object]:
    return verify_chain(runtime.store, runtime.store.audit_key()).as_dict()


def test_an_untouched_log_verifies_and_links_every_entry(runtime: Runtime) -> None:
    _fill(runtime, 25)
    report = _verify(runtime)
    assert report == {
        "ok": True,
        "entries": 25,
        "unchained": 0,
        "head_seq": 25,
        "problem": None,
        "entry_id": None,
        "seq": None,
    }
    with runtime.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, entry_hash FROM audit_log ORDER BY seq")).all()
    assert [r.seq for r in rows] == list(range(1, 26))
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(rows))


@pytest.mark.parametrize("verb", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_the_database_refuses_updates_and_deletes(runtime: Runtime, verb: str) -> None:
    _fill(runtime, 2)
    with pytest.raises(DBAPIError, match="append-only"), runtime.store.engine.begin() as conn:
        conn.execute(text(verb))
    assert _verify(runtime)["ok"] is True


Case = tuple[str, Callable[[Runtime], None], str]
CASES: list[Case] = [
    (
        "altered actor",
        lambda rt: _tamper(rt, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7"),
        "entry 7 was altered",
    ),
    (
        "altered details",
        lambda rt: _tamper(rt, "UPDATE audit_log SET details = '{\"n\": 99}' WHERE seq = 3"),
        "entry 3 was altered",
    ),
    ("removed entry", lambda rt: _tamper(rt, "DELETE FROM audit_log WHERE seq = 5"), "entries 5..5 are missing"),
    ("removed newest", lambda rt: _tamper(rt, "DELETE FROM audit_log WHERE seq = 10"), "newest entries are missing"),
    (
        "swapped order",
        lambda rt: (
            _tamper(rt, "UPDATE audit_log SET seq = CASE seq WHEN 4 THEN -6 ELSE -4 END WHERE seq IN (4, 6)")
            or _tamper(rt, "UPDATE audit_log SET seq = -seq WHERE seq < 0")
        ),
        "entry 4 does not link",
    ),
]


@pytest.mark.parametrize(("label", "change", "problem"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_found_and_named(
    runtime: Runtime, label: str, change: Callable[[Runtime], None], problem: str
) -> None:
    _fill(runtime, 10)
    change(runtime)
    report = _verify(runtime)
    assert report["ok"] is False
    assert problem in str(report["problem"])


def test_rewriting_an_entry_and_its_hash_without_the_master_key_is_found(runtime: Runtime) -> None:
    _fill(runtime, 6)
    with runtime.store.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE seq = 6")).mappings().one()
    forged = dict(row) | {"actor": "forger", "details": {"n": 5}}
    # Without the master key the forger can only guess the chain key.
    forged_hash = entry_digest(b"guessed-key", str(row["prev_hash"]), forged)
    _tamper(runtime, "UPDATE audit_log SET actor = 'forger', entry_hash = :h WHERE seq = 6", h=forged_hash)
    with runtime.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": forged_hash})
    report = _verify(runtime)
    assert report["ok"] is False
    assert "entry 6 was altered" in str(report["problem"])


def test_concurrent_writers_never_fork_the_chain(runtime: Runtime) -> None:
    def writer(k: int) -> None:
        for i in range(15):
            record(runtime.store, f"w{k}", "alert_rule.create", f"rule:{k}-{i}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = _verify(runtime)
    assert report["ok"] is True
    assert report["entries"] == 12 * 15


@pytest.mark.skipif(bool(PG_URL), reason="the CLI test uses the embedded store of its own data directory")
def test_cli_verify_exits_0_when_intact_and_1_naming_the_break(tmp_path: Path) -> None:
    env = {"PATRON_HOME": str(tmp_path / "home"), "PATRON_ENV": "development", "PATRON_DATABASE_URL": None}
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env, catch_exceptions=False).exit_code == 0
    intact = runner.invoke(app, ["audit", "verify", "--json"], env=env, catch_exceptions=False)
    assert intact.exit_code == 0, intact.output
    assert '"ok": true' in intact.output
    out = tmp_path / "audit.jsonl"
    exported = runner.invoke(app, ["audit", "export", "-o", str(out)], env=env, catch_exceptions=False)
    assert exported.exit_code == 0
    lines = out.read_text().splitlines()
    assert len(lines) >= 1 and '"entry_hash"' in lines[0]
    rt = Runtime(make_settings(tmp_path / "home"))
    try:
        _tamper(rt, "UPDATE audit_log SET action = 'nothing' WHERE seq = 1")
    finally:
        rt.close()
    broken = runner.invoke(app, ["audit", "verify"], env=env, catch_exceptions=False)
    assert broken.exit_code == 1
    assert "entry 1 was altered" in " ".join(broken.output.split())
