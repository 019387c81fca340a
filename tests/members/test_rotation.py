"""Master-key rotation: every wrapped key moves to the new master key while the vault keeps serving."""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, text

from patron.alerts.delivery import secret_owner
from patron.alerts.models import AlertRule
from patron.alerts.schemas import AlertRuleCreate
from patron.alerts.service import create_rule
from patron.audit.chain import verify_chain
from patron.audit.models import AuditEntry
from patron.audit.service import record
from patron.auth.schemas import OperatorCreate
from patron.auth.service import begin_mfa, confirm_mfa, create_operator
from patron.backup import backup, restore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.keys import MissingMasterKeyError, key_id
from patron.keys.rotation import key_status, retire, rotate
from patron.members.vault_store import find_by_email, read_personal, write_personal
from patron.runtime import Runtime
from patron.settings import Settings, parse_keyring
from tests.members.conftest import add_members, fresh_runtime, open_twin, person, settings_for


class SimulatedCrashError(Exception):
    """Stands for the operator's Ctrl-C or a crash in the middle of a rotation."""


class StopAfter:
    """Progress that interrupts the work after ``limit`` steps of the stage named ``stage``."""

    def __init__(self, stage: str, limit: int) -> None:
        self.stage_name, self.limit, self.done, self.current = stage, limit, 0, ""

    def stage(self, description: str, total: int | None = None) -> None:
        self.current = description

    def advance(self, steps: int = 1) -> None:
        if self.current == self.stage_name:
            self.done += steps
            if self.done >= self.limit:
                raise SimulatedCrashError


class AwaitWriter:
    """Progress that, after the first batch of member keys, waits until the other process has written again."""

    def __init__(self, writes: list[int]) -> None:
        self.writes, self.current, self.waited = writes, "", False

    def stage(self, description: str, total: int | None = None) -> None:
        self.current = description

    def advance(self, steps: int = 1) -> None:
        if self.current == "Rewrapping member data keys" and not self.waited:
            self.waited, seen, deadline = True, self.writes[0], time.monotonic() + 60
            while self.writes[0] == seen and time.monotonic() < deadline:
                time.sleep(0.01)


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def _filled(runtime: Runtime, n: int) -> list[str]:
    keys = add_members(runtime, n)
    write_personal(runtime.store, runtime.cipher, [(k, person(i)) for i, k in enumerate(keys)])
    return keys


def _all_open(runtime: Runtime, keys: list[str]) -> None:
    assert [read_personal(runtime.store, runtime.cipher, k) for k in keys] == [person(i) for i in range(len(keys))]


def _usage(runtime: Runtime) -> dict[str, tuple[bool, int, int]]:
    return {k.key_id: (k.active, k.member_keys, k.system_keys) for k in key_status(runtime).keys}


def test_a_rotation_rewraps_every_key_under_a_new_master_key_and_is_audited(keyed: Runtime) -> None:
    keys = _filled(keyed, 25)
    old = keyed.keyring.active()
    assert _usage(keyed) == {old.id: (True, 25, 3)}

    report = rotate(keyed, actor="tester", batch_size=10)

    ring = parse_keyring(keyed.settings.key_file.read_text())
    assert ring[1] == old.secret and key_id(ring[0]) == report.target != old.id
    assert (report.created, report.member_keys, report.system_keys, report.complete) == (True, 25, 3, True)
    assert _usage(keyed) == {report.target: (True, 25, 3), old.id: (False, 0, 0)}
    _all_open(keyed, keys)
    assert find_by_email(keyed.store, keyed.cipher, "person3@example.com") == [keys[3]]
    with keyed.store.session() as sess:
        entries = list(
            sess.scalars(select(AuditEntry).where(AuditEntry.action.like("keys.%")).order_by(AuditEntry.seq))
        )
    assert [e.action for e in entries] == ["keys.rotation_started", "keys.rotated"]
    assert entries[1].target == report.target and entries[1].details["member_keys"] == 25
    logged = json.dumps([e.details for e in entries])
    for secret in ring:
        assert _b64(secret) not in logged and secret.hex() not in logged
    assert verify_chain(keyed.store, keyed.store.audit_key()).ok


def test_an_interrupted_rotation_resumes_and_retire_waits_for_it(keyed: Runtime) -> None:
    keys = _filled(keyed, 40)
    old = keyed.keyring.active()

    with pytest.raises(SimulatedCrashError):
        rotate(keyed, actor="tester", batch_size=10, progress=StopAfter("Rewrapping member data keys", 20))

    new = keyed.keyring.active()
    assert _usage(keyed) == {new.id: (True, 20, 0), old.id: (False, 20, 3)}
    twin = open_twin(keyed)  # another process, reading while the rotation is half done
    try:
        _all_open(twin, keys)
        with pytest.raises(ConflictError, match="still wraps 20 member data keys and 3 system keys"):
            retire(twin, old.id, actor="tester")

        report = rotate(keyed, actor="tester", batch_size=10)

        assert (report.created, report.target, report.complete) == (False, new.id, True)
        assert len(parse_keyring(keyed.settings.key_file.read_text())) == 2  # no third key
        assert retire(keyed, old.id, actor="tester") is True
        assert parse_keyring(keyed.settings.key_file.read_text()) == (new.secret,)
        _all_open(twin, keys)
    finally:
        twin.close()
    with keyed.store.session() as sess:
        actions = list(
            sess.scalars(select(AuditEntry.action).where(AuditEntry.action.like("keys.%")).order_by(AuditEntry.seq))
        )
    assert actions == [
        "keys.rotation_started",
        "keys.rotation_interrupted",
        "keys.rotation_started",
        "keys.rotated",
        "keys.retired",
    ]


def test_retire_refuses_the_active_key_and_keys_it_does_not_hold(keyed: Runtime) -> None:
    with pytest.raises(ConflictError, match="is the active key"):
        retire(keyed, keyed.keyring.active().id, actor="tester")
    with pytest.raises(NotFoundError, match="not in the keyring"):
        retire(keyed, "0" * 16, actor="tester")
    with pytest.raises(ValidationError, match="batch size"):
        rotate(keyed, actor="tester", batch_size=0)


def test_a_rotation_while_another_process_reads_and_writes_loses_nothing(keyed: Runtime) -> None:
    keys = _filled(keyed, 300)
    expected = {k: person(i) for i, k in enumerate(keys)}
    errors: list[BaseException] = []
    stop, writes = threading.Event(), [0, 0]  # writes before and after the rotation ended
    done = threading.Event()

    def serve() -> None:
        twin = open_twin(keyed)
        rng = random.Random(7)
        try:
            round_ = 0
            while not stop.is_set():
                round_ += 1
                batch = rng.sample(keys, 10)
                fresh = add_members(twin, 2, prefix="w", start=round_ * 2)
                updates = [(k, person(round_, tag=f"-r{round_}")) for k in [*batch, *fresh]]
                write_personal(twin.store, twin.cipher, updates)
                expected.update(dict(updates))
                writes[done.is_set()] += 1
                for k in rng.sample(sorted(expected), 5):
                    assert read_personal(twin.store, twin.cipher, k) == expected[k]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            twin.close()

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        report = rotate(keyed, actor="tester", batch_size=25, progress=AwaitWriter(writes))
        done.set()
        deadline = time.monotonic() + 60
        while not writes[1] and not errors and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=120)

    assert not errors, errors
    assert writes[0] > 0 and writes[1] > 0
    assert report.complete
    for k, fields in expected.items():
        assert read_personal(keyed.store, keyed.cipher, k) == fields
    usage = _usage(keyed)
    assert usage[report.target] == (True, len(expected), 3)
    assert sum(m + s for active, m, s in usage.values() if not active) == 0


def test_totp_and_webhook_secrets_and_the_audit_chain_survive_a_rotation(keyed: Runtime) -> None:
    operator = create_operator(keyed.store, OperatorCreate(username="keeper", password="keeper-pass-123", role="admin"))
    setup = begin_mfa(keyed.store, keyed.cipher, operator.id)
    rule = create_rule(
        keyed, AlertRuleCreate(name="gmv-floor", metric="gmv", kind="threshold", op="<", value=1.0), "keeper"
    )
    for i in range(5):
        record(keyed.store, "keeper", "member.personal_read", f"m{i}")
    chain_key = keyed.store.audit_key()

    rotate(keyed, actor="keeper")

    twin = open_twin(keyed)  # a process started after the rotation
    try:
        assert twin.store.audit_key() == chain_key  # rewrapped, not replaced
        assert verify_chain(twin.store, twin.store.audit_key()).ok
        confirm_mfa(twin.store, twin.cipher, operator.id, pyotp.TOTP(setup.secret).now())
        with twin.store.session() as sess:
            sealed = sess.get_one(AlertRule, rule.id).webhook_secret
        assert twin.cipher.open(secret_owner(rule.id), "webhook_secret", sealed) == rule.webhook_secret
        record(twin.store, "keeper", "system.check")
        report = verify_chain(twin.store, twin.store.audit_key())
        assert report.ok and report.entries == 8, report
    finally:
        twin.close()


def test_with_the_keyring_in_the_environment_the_new_key_goes_first_there(tmp_path: Path) -> None:
    a, b = secrets.token_bytes(32), secrets.token_bytes(32)
    home = tmp_path / "home"
    first = fresh_runtime(settings_for(home, _b64(a)))
    try:
        keys = _filled(first, 10)
        with pytest.raises(ValidationError, match="PATRON_MASTER_KEY holds the keyring"):
            rotate(first, actor="tester")
    finally:
        first.close()

    both = Runtime(settings_for(home, f"{_b64(b)},{_b64(a)}"))
    try:
        report = rotate(both, actor="tester")
        assert (report.created, report.target, report.previous, report.complete) == (
            False,
            key_id(b),
            (key_id(a),),
            True,
        )
        assert retire(both, key_id(a), actor="tester") is False  # checked; the variable is the operator's to change
    finally:
        both.close()

    last = Runtime(settings_for(home, _b64(b)))
    try:
        _all_open(last, keys)
        with pytest.raises(ValidationError, match="cannot be given here"):
            rotate(last, actor="tester", new_key=secrets.token_bytes(32))
    finally:
        last.close()


def test_a_rotation_stops_before_changing_anything_when_a_master_key_is_missing(keyed: Runtime) -> None:
    _filled(keyed, 5)
    lost = keyed.keyring.active().id
    keyed.settings.write_key_file([secrets.token_bytes(32)])  # the key file was replaced, the old key lost
    ring_before = keyed.settings.key_file.read_text()
    keyed.keys.forget()

    with pytest.raises(MissingMasterKeyError, match=lost):
        rotate(keyed, actor="tester")

    assert keyed.settings.key_file.read_text() == ring_before
    with keyed.store.engine.connect() as conn:
        assert set(conn.execute(text("SELECT master_key_id FROM member_data_keys")).scalars()) == {lost}


@pytest.mark.slow
def test_backups_name_the_master_keys_they_need_across_a_rotation(keyed: Runtime, tmp_path: Path) -> None:
    keys = _filled(keyed, 8)
    old = keyed.keyring.active()
    before, manifest_before = backup(keyed, tmp_path / "before.tar.gz")
    report = rotate(keyed, actor="tester")
    after, manifest_after = backup(keyed, tmp_path / "after.tar.gz")

    assert manifest_before.key_fingerprints == [old.id] and manifest_before.key_fingerprint == old.id
    assert manifest_after.key_fingerprints == [report.target] == [manifest_after.key_fingerprint]

    def target(name: str, ring: list[bytes]) -> Runtime:
        rt = Runtime(Settings(home=tmp_path / name, env="development", master_key=",".join(map(_b64, ring))))
        rt.settings.home.mkdir()
        rt.store.migrate()
        return rt

    new_secret = parse_keyring(keyed.settings.key_file.read_text())[0]
    for archive, ring, ok in [
        (after, [new_secret], True),
        (before, [new_secret], False),
        (before, [new_secret, old.secret], True),
    ]:
        rt = target(f"{archive.stem}-{len(ring)}", ring)
        try:
            if ok:
                restore(rt, archive)
                _all_open(rt, keys)
                assert verify_chain(rt.store, rt.store.audit_key()).ok
            else:
                with pytest.raises(ValidationError, match="another master key"):
                    restore(rt, archive)
        finally:
            rt.close()


def test_erased_customer_ids_are_still_recognised_after_a_rotation(keyed: Runtime) -> None:
    from patron.privacy.erasure import erased_source_ids, tombstone_digest
    from patron.privacy.models import ErasureTombstone

    with keyed.store.session() as sess:
        sess.add(ErasureTombstone(digest=tombstone_digest(keyed, "crm", "P-1"), request_id=None))
    assert erased_source_ids(keyed, "crm", ["P-1", "P-2"]) == {"P-1"}

    rotate(keyed, actor="tester", batch_size=10)

    twin = open_twin(keyed)  # a process that only knows the new keyring
    try:
        assert erased_source_ids(twin, "crm", ["P-1", "P-2"]) == {"P-1"}
        assert erased_source_ids(twin, "shop", ["P-1"]) == set()  # the source is part of the hash
    finally:
        twin.close()
