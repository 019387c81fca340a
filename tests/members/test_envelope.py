"""Envelope encryption of the member vault: one data key per member, wrapped by the master key."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from patron.errors import SettingsError
from patron.keys import KeyUnwrapError, MasterKey, MissingMasterKeyError
from patron.keys.legacy import derived_key
from patron.members.vault import FieldCipher, VaultDecryptError
from patron.members.vault_store import find_by_email, find_by_phone, read_personal, shred_member, write_personal
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY, Settings, parse_keyring
from tests.members.conftest import add_members, person


def _row(runtime: Runtime, member_key: str) -> dict[str, Any]:
    with runtime.store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT v.key_version, v.name, v.email, v.phone, k.wrapped, k.master_key_id FROM member_vault v"
                " LEFT JOIN member_data_keys k ON k.member_key = v.member_key WHERE v.member_key = :k"
            ),
            {"k": member_key},
        ).mappings()
        found = row.first()
    assert found is not None
    return {name: bytes(v) if isinstance(v, memoryview) else v for name, v in found.items()}


def _data_key(runtime: Runtime, member_key: str) -> AESGCM:
    row = _row(runtime, member_key)
    return AESGCM(runtime.keys.open_member_key(member_key, str(row["master_key_id"]), row["wrapped"]))


def test_each_member_gets_a_data_key_of_its_own_under_the_active_master_key(runtime: Runtime) -> None:
    keys = add_members(runtime, 3)
    write_personal(runtime.store, runtime.cipher, [(k, person(i)) for i, k in enumerate(keys)])

    rows = [_row(runtime, k) for k in keys]
    assert {r["master_key_id"] for r in rows} == {runtime.keyring.active().id}
    assert len({r["wrapped"] for r in rows}) == 3
    assert all(r["key_version"] == 2 and bytes(r["email"])[:1] == b"\x02" for r in rows)
    assert [read_personal(runtime.store, runtime.cipher, k) for k in keys] == [person(i) for i in range(3)]


def test_a_ciphertext_opens_only_under_its_own_members_data_key(runtime: Runtime) -> None:
    a, b = add_members(runtime, 2)
    write_personal(runtime.store, runtime.cipher, [(a, person(1)), (b, person(2))])
    sealed = _row(runtime, a)["email"]
    assert isinstance(sealed, bytes)

    assert FieldCipher.open_field(_data_key(runtime, a), a, "email", sealed) == "person1@example.com"
    with pytest.raises(VaultDecryptError):
        FieldCipher.open_field(_data_key(runtime, b), a, "email", sealed)
    with pytest.raises(VaultDecryptError):
        FieldCipher.open_field(_data_key(runtime, b), b, "email", sealed)


def test_a_ciphertext_moved_to_another_field_or_member_does_not_open(runtime: Runtime) -> None:
    a, b, c = add_members(runtime, 3)
    write_personal(runtime.store, runtime.cipher, [(a, person(1)), (b, person(2)), (c, person(3))])
    with runtime.store.engine.begin() as conn:
        conn.execute(text("UPDATE member_vault SET name = email WHERE member_key = :k"), {"k": a})
        # b gets c's sealed fields (with its own data key), c gets b's fields together with b's wrapped key
        conn.execute(
            text(
                "UPDATE member_vault SET email = (SELECT email FROM member_vault WHERE member_key = :c)"
                " WHERE member_key = :b"
            ),
            {"b": b, "c": c},
        )
        conn.execute(
            text(
                "UPDATE member_data_keys SET wrapped = (SELECT wrapped FROM member_data_keys WHERE member_key = :b)"
                " WHERE member_key = :c"
            ),
            {"b": b, "c": c},
        )

    with pytest.raises(VaultDecryptError):
        read_personal(runtime.store, runtime.cipher, a)
    with pytest.raises(VaultDecryptError):
        read_personal(runtime.store, runtime.cipher, b)
    with pytest.raises(KeyUnwrapError, match="member:"):
        read_personal(runtime.store, runtime.cipher, c)


def test_a_member_given_twice_in_one_write_keeps_its_last_fields(runtime: Runtime) -> None:
    a, b = add_members(runtime, 2)

    written = write_personal(runtime.store, runtime.cipher, [(a, person(1)), (b, person(2)), (a, person(1, tag="-2"))])

    assert written == 2
    assert read_personal(runtime.store, runtime.cipher, a) == person(1, tag="-2")
    assert find_by_email(runtime.store, runtime.cipher, "person1@example.com") == []
    assert write_personal(runtime.store, runtime.cipher, []) == 0


def test_rewriting_a_member_gives_it_a_new_data_key(runtime: Runtime) -> None:
    (a,) = add_members(runtime, 1)
    write_personal(runtime.store, runtime.cipher, [(a, person(1))])
    before = _row(runtime, a)
    write_personal(runtime.store, runtime.cipher, [(a, person(1, tag="-new"))])
    after = _row(runtime, a)

    assert after["wrapped"] != before["wrapped"]
    assert read_personal(runtime.store, runtime.cipher, a) == person(1, tag="-new")
    with pytest.raises(VaultDecryptError):
        FieldCipher.open_field(_data_key(runtime, a), a, "email", before["email"])


def test_look_ups_go_through_blind_indexes_and_nothing_is_stored_in_clear(runtime: Runtime) -> None:
    keys = add_members(runtime, 4)
    write_personal(runtime.store, runtime.cipher, [(k, person(i)) for i, k in enumerate(keys)])

    assert find_by_email(runtime.store, runtime.cipher, "  PERSON2@Example.COM ") == [keys[2]]
    assert find_by_phone(runtime.store, runtime.cipher, "+447700000003") == [keys[3]]
    assert find_by_email(runtime.store, runtime.cipher, "nobody@example.com") == []
    with runtime.store.engine.connect() as conn:
        stored = [
            bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
            for table in ("member_vault", "member_data_keys", "system_keys")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
            for v in row
            if v is not None
        ]
    for clear in (b"person2@example.com", b"7700000003", b"Person 1", b"High Street"):
        assert not any(clear in value for value in stored)


def test_shredding_a_member_destroys_its_data_key_and_entry(runtime: Runtime) -> None:
    a, b = add_members(runtime, 2)
    write_personal(runtime.store, runtime.cipher, [(a, person(1)), (b, person(2))])
    leftover = _row(runtime, a)

    with runtime.store.session() as sess:
        shred_member(sess, a)

    assert read_personal(runtime.store, runtime.cipher, a) is None
    assert find_by_email(runtime.store, runtime.cipher, "person1@example.com") == []
    with runtime.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM member_data_keys WHERE member_key = :k"), {"k": a}).scalar() == 0
    # A copy of the ciphertext that survived somewhere opens under no key the store still holds.
    survivors = [_data_key(runtime, b), AESGCM(runtime.keys.system_key("secrets"))]
    for key in survivors:
        with pytest.raises(VaultDecryptError):
            FieldCipher.open_field(key, a, "email", leftover["email"])
    with runtime.store.engine.begin() as conn:  # put the copy back: without its data key it stays shut
        conn.execute(
            text("INSERT INTO member_vault (member_key, key_version, email, updated_at) VALUES (:k, 2, :e, :t)"),
            {"k": a, "e": leftover["email"], "t": "2026-01-01 00:00:00"},
        )
    with pytest.raises(VaultDecryptError, match="no data key"):
        read_personal(runtime.store, runtime.cipher, a)
    assert read_personal(runtime.store, runtime.cipher, b) == person(2)


def test_a_new_store_gets_random_system_keys_wrapped_under_the_active_key(runtime: Runtime) -> None:
    runtime.keys.ensure_system_keys()
    with runtime.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT purpose, origin, master_key_id FROM system_keys ORDER BY purpose")).all()

    assert [tuple(r) for r in rows] == [
        (purpose, "random", runtime.keyring.active().id) for purpose in ("audit-chain", "blind-index", "secrets")
    ]
    assert runtime.keys.system_key("blind-index") != derived_key(runtime.settings.master_key_bytes, "blind-index")


def test_a_row_under_a_master_key_the_keyring_lacks_is_named(runtime: Runtime) -> None:
    (a,) = add_members(runtime, 1)
    stranger = MasterKey(secrets.token_bytes(32))
    data_key = secrets.token_bytes(32)
    with runtime.store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO member_vault (member_key, key_version, email, updated_at) VALUES (:k, 2, :e, :t)"),
            {"k": a, "e": FieldCipher.seal_field(AESGCM(data_key), a, "email", "x@example.com"), "t": "2026-01-01"},
        )
        conn.execute(
            text("INSERT INTO member_data_keys (member_key, master_key_id, wrapped) VALUES (:k, :m, :w)"),
            {"k": a, "m": stranger.id, "w": stranger.wrap(f"member:{a}", data_key)},
        )

    with pytest.raises(MissingMasterKeyError, match=stranger.id):
        read_personal(runtime.store, runtime.cipher, a)


def test_a_wrapped_key_opens_only_under_its_master_key_and_for_its_owner() -> None:
    first, second = MasterKey(secrets.token_bytes(32)), MasterKey(secrets.token_bytes(32))
    wrapped = first.wrap("member:m1", b"k" * 32)

    assert first.unwrap("member:m1", wrapped) == b"k" * 32
    with pytest.raises(KeyUnwrapError):
        first.unwrap("member:m2", wrapped)
    with pytest.raises(KeyUnwrapError):
        second.unwrap("member:m1", wrapped)
    assert first.id != second.id and len(first.id) == 16 and first.secret.hex() not in repr(first)


def test_the_keyring_reads_one_or_more_keys_newest_first() -> None:
    one, two = (base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() for _ in range(2))

    assert parse_keyring(one) == (base64.urlsafe_b64decode(one),)
    assert parse_keyring(f"{two}, {one}") == parse_keyring(f"# comment\n{two}\n\n{one}\n")
    assert parse_keyring(f"{two},{one}")[0] == base64.urlsafe_b64decode(two)
    for raw, problem in [
        (f"{one},{one}", "same key twice"),
        (f"{one},not-base64!", "master key 2 of 2 is not valid base64"),
        (base64.urlsafe_b64encode(b"short").decode(), "must decode to 32 bytes"),
        ("# nothing\n", "empty"),
    ]:
        with pytest.raises(SettingsError, match=problem):
            parse_keyring(raw)
    with pytest.raises(ValueError, match="placeholder"):
        Settings(env="production", master_key=f"{one},{PLACEHOLDER_MASTER_KEY}")
