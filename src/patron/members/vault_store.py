"""Writing and reading personal fields in the member vault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from patron.db.engine import OperationalStore
from patron.members.models import VaultEntry
from patron.members.vault import PERSONAL_FIELDS, FieldCipher

__all__ = ["find_by_email", "read_personal", "shred_member", "write_personal"]

_CHUNK = 20_000


def _sealed_row(cipher: FieldCipher, member_key: str, fields: Mapping[str, str | None]) -> dict[str, object]:
    row: dict[str, object] = {"member_key": member_key}
    for name in PERSONAL_FIELDS:
        value = fields.get(name)
        row[name] = cipher.seal(member_key, name, value) if value else None
    email, phone = fields.get("email"), fields.get("phone")
    row["email_index"] = cipher.blind_index("email", email) if email else None
    row["phone_index"] = cipher.blind_index("phone", phone) if phone else None
    return row


def _upsert(dialect: str) -> Any:
    """An INSERT that replaces an existing entry (SQLite and PostgreSQL)."""
    stmt = sqlite_insert(VaultEntry) if dialect == "sqlite" else pg_insert(VaultEntry)
    replaced = {name: getattr(stmt.excluded, name) for name in (*PERSONAL_FIELDS, "email_index", "phone_index")}
    return stmt.on_conflict_do_update(index_elements=["member_key"], set_=replaced)


def write_personal(
    store: OperationalStore, cipher: FieldCipher, records: Iterable[tuple[str, Mapping[str, str | None]]]
) -> int:
    """Upsert the vault entries of the given members (replace, not merge)."""
    rows = [_sealed_row(cipher, key, fields) for key, fields in records]
    statement = _upsert(store.dialect)
    with store.engine.begin() as conn:  # a Core connection: plain executemany, no ORM bulk path
        for start in range(0, len(rows), _CHUNK):
            conn.execute(statement, rows[start : start + _CHUNK])
    return len(rows)


def read_personal(store: OperationalStore, cipher: FieldCipher, member_key: str) -> dict[str, str | None] | None:
    """Decrypt one member's personal fields, or None if the vault has no entry."""
    with store.session() as sess:
        entry = sess.get(VaultEntry, member_key)
        if entry is None:
            return None
        return {
            name: cipher.open(member_key, name, sealed) if (sealed := getattr(entry, name)) else None
            for name in PERSONAL_FIELDS
        }


def find_by_email(store: OperationalStore, cipher: FieldCipher, email: str) -> list[str]:
    """Member keys whose e-mail matches, through the blind index."""
    index = cipher.blind_index("email", email)
    with store.session() as sess:
        return list(sess.scalars(select(VaultEntry.member_key).where(VaultEntry.email_index == index)))


def shred_member(session: Session, member_key: str) -> None:
    """Destroy one member's personal data inside the caller's transaction (erasure).

    The member-key mapping is left to the caller, which decides when the link goes.
    """
    session.execute(delete(VaultEntry).where(VaultEntry.member_key == member_key))
