"""A data directory from before envelope encryption: its data keeps opening and verifying, and rotation converts it.

The older data is written here the way the previous version wrote it (every key derived from the master key
with HKDF-SHA256), by a bare store that has no key service, before the upgraded code first touches the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import insert, text

from patron.alerts.models import AlertRule
from patron.audit.chain import append, chain_key, verify_chain
from patron.audit.models import AuditEntry
from patron.audit.service import record
from patron.auth.models import Operator
from patron.auth.schemas import OperatorCreate
from patron.auth.service import confirm_mfa, create_operator, totp_step
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.keys.rotation import key_status, retire, rotate
from patron.members.models import MemberIdentity
from patron.members.vault_store import count_legacy, find_by_email, find_by_phone, read_personal, write_personal
from patron.runtime import Runtime
from patron.settings import parse_keyring
from tests.members.conftest import add_members, fresh_runtime, open_twin, person, settings_for

N = 30


def _v1_key(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def v1_seal(master: bytes, owner: str, field: str, plaintext: str) -> bytes:
    """A field or secret sealed as the previous version sealed it."""
    nonce = os.urandom(12)
    aead = AESGCM(_v1_key(master, b"patron-vault-v1"))
    return b"\x01" + nonce + aead.encrypt(nonce, plaintext.encode(), f"{owner}:{field}".encode())


def v1_index(master: bytes, kind: str, value: str) -> str:
    normal = value.strip().lower() if kind == "email" else "".join(c for c in value if c.isdigit() or c == "+")
    key = _v1_key(master, b"patron-blind-index-v1")
    return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Older:
    """What the older version left in the store."""

    members: list[str]
    operator_id: int
    totp_secret: str
    rule_id: int
    webhook_secret: str


def write_older_data(url: str, master: bytes) -> Older:
    """Members, a TOTP secret, a webhook secret and an audit chain, all under keys derived from ``master``."""
    store = OperationalStore(url)  # no key service: writes exactly what is given
    try:
        members = [f"old{i:013d}" for i in range(N)]
        now = utcnow()
        with store.engine.begin() as conn:
            conn.execute(insert(MemberIdentity), [{"member_key": k, "source": "v1", "source_id": k} for k in members])
            conn.execute(
                text(
                    "INSERT INTO member_vault (member_key, key_version, name, email, phone, address, birthday,"
                    " email_index, phone_index, updated_at) VALUES (:k, 1, :name, :email, :phone, :address,"
                    " :birthday, :ei, :pi, :t)"
                ),
                [
                    {
                        "k": k,
                        **{f: v1_seal(master, k, f, v) if v else None for f, v in person(i).items()},
                        "ei": v1_index(master, "email", str(person(i)["email"])),
                        "pi": v1_index(master, "phone", str(person(i)["phone"])),
                        "t": now,
                    }
                    for i, k in enumerate(members)
                ],
            )
        operator = create_operator(store, OperatorCreate(username="old-admin", password="older-pass-123", role="admin"))
        totp = pyotp.random_base32()
        webhook = "whsec_" + secrets.token_urlsafe(16)
        with store.session() as sess:
            sess.get_one(Operator, operator.id).mfa_secret = v1_seal(master, f"operator-{operator.id}", "totp", totp)
            rule = AlertRule(name="gmv-floor", metric="gmv", kind="threshold", op="<", value=1.0, created_by="t")
            rule.webhook_secret = b""
            sess.add(rule)
            sess.flush()
            rule.webhook_secret = v1_seal(master, f"alert_rule:{rule.id}", "webhook_secret", webhook)
            rule_id = rule.id
        for i in range(5):
            with store.session() as sess:
                entry = AuditEntry(actor="v1", action="member.personal_read", target=members[i], details={"n": i})
                entry.at = utcnow()
                append(sess, chain_key(master), entry)
        return Older(members, operator.id, totp, rule_id, webhook)
    finally:
        store.dispose()


def _forget_system_keys(url: str) -> None:
    """Start from a store that has never been opened by this version."""
    store = OperationalStore(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM system_keys"))
    finally:
        store.dispose()


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[Runtime, Older]]:
    """A data directory (key file keyring) holding the older version's data, opened by this version."""
    settings = settings_for(tmp_path / "home")
    settings.ensure_key_file()
    bare = fresh_runtime(settings)  # migrated (and emptied on PostgreSQL), closed before the older data goes in
    url = bare.settings.operational_url
    bare.close()
    _forget_system_keys(url)
    older = write_older_data(url, settings.master_key_bytes)
    rt = Runtime(settings_for(settings.home))
    yield rt, older
    rt.close()


def _everything_older_works(rt: Runtime, older: Older) -> None:
    for i, key in enumerate(older.members):
        assert read_personal(rt.store, rt.cipher, key) == person(i)
    assert find_by_email(rt.store, rt.cipher, "PERSON7@example.com") == [older.members[7]]
    assert find_by_phone(rt.store, rt.cipher, "+447700000008") == [older.members[8]]
    report = verify_chain(rt.store, rt.store.audit_key())
    assert report.ok and report.entries >= 5, report
    with rt.store.session() as sess:
        operator = sess.get_one(Operator, older.operator_id)
        code = pyotp.TOTP(older.totp_secret).now()
        assert totp_step(rt.cipher, operator, code, utcnow()) is not None
        sealed = sess.get_one(AlertRule, older.rule_id).webhook_secret
    assert rt.cipher.open(f"alert_rule:{older.rule_id}", "webhook_secret", sealed) == older.webhook_secret


def test_the_older_data_opens_and_verifies_under_adopted_system_keys(upgraded: tuple[Runtime, Older]) -> None:
    rt, older = upgraded

    _everything_older_works(rt, older)
    with rt.store.engine.connect() as conn:
        origins = {row.purpose: row.origin for row in conn.execute(text("SELECT purpose, origin FROM system_keys"))}
    assert origins == {"audit-chain": "derived", "blind-index": "derived", "secrets": "derived"}
    assert count_legacy(rt.store) == N


def test_new_writes_use_member_data_keys_next_to_the_older_entries(upgraded: tuple[Runtime, Older]) -> None:
    rt, older = upgraded
    (fresh,) = add_members(rt, 1, prefix="new")
    write_personal(rt.store, rt.cipher, [(fresh, person(99))])
    record(rt.store, "op", "member.personal_read", fresh)

    assert read_personal(rt.store, rt.cipher, fresh) == person(99)
    assert find_by_email(rt.store, rt.cipher, "person99@example.com") == [fresh]
    with rt.store.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT key_version FROM member_vault WHERE member_key = :k"), {"k": fresh}).scalar() == 2
        )
    assert count_legacy(rt.store) == N
    _everything_older_works(rt, older)


def test_rotation_converts_the_older_entries_and_keeps_everything_working(upgraded: tuple[Runtime, Older]) -> None:
    rt, older = upgraded
    old_master = rt.settings.master_key_bytes
    old_id = rt.keyring.active().id
    rt.keys.ensure_system_keys()

    report = rotate(rt, actor="test", batch_size=7)

    assert report.complete and report.created and report.converted == N
    assert count_legacy(rt.store) == 0
    assert parse_keyring(rt.settings.key_file.read_text())[1] == old_master
    _everything_older_works(rt, older)
    with rt.store.engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT key_version FROM member_vault")).scalars().all() == [2]
    # Another process reading the rotated key file: the chain continues, the older key can go.
    twin = open_twin(rt)
    try:
        record(twin.store, "op", "system.check")
        assert verify_chain(twin.store, twin.store.audit_key()).ok
        assert retire(twin, old_id, actor="test") is True
        assert [k.key_id for k in key_status(twin).keys] == [report.target]
        _everything_older_works(twin, older)
    finally:
        twin.close()


def test_older_data_under_the_second_key_of_the_keyring_is_recognised(tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    ring = ",".join(base64.urlsafe_b64encode(k).decode() for k in (new, old))
    bare = fresh_runtime(settings_for(tmp_path / "home", base64.urlsafe_b64encode(old).decode()))
    url = bare.settings.operational_url
    bare.close()
    _forget_system_keys(url)
    older = write_older_data(url, old)

    rt = Runtime(settings_for(tmp_path / "home", ring))
    try:
        _everything_older_works(rt, older)
        with rt.store.engine.connect() as conn:
            wrapped_under = set(conn.execute(text("SELECT master_key_id FROM system_keys")).scalars())
        assert wrapped_under == {rt.keyring.active().id}  # adopted from the older key, wrapped under the new one
        report = rotate(rt, actor="test")
        assert report.complete and not report.created and report.converted == N
        # The pending TOTP enrolment sealed by the older version can still be confirmed.
        confirm_mfa(rt.store, rt.cipher, older.operator_id, pyotp.TOTP(older.totp_secret).now())
        with rt.store.session() as sess:
            assert sess.get_one(Operator, older.operator_id).mfa_enabled is True
    finally:
        rt.close()
