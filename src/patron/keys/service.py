"""Keys in the operational store: system keys (made on first use) and member data keys.

Every stored key is a random 256-bit key wrapped by a master key of the
keyring and names that master key, so readers unwrap with whichever key a row
names while a rotation moves rows from one master key to the next.
"""

from __future__ import annotations

import os
import threading
from typing import Any, get_args

from sqlalchemy import Connection, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import PatronError
from patron.keys.legacy import SystemPurpose, derived_key, legacy_master, legacy_uses
from patron.keys.master import MasterKey, MasterKeyring
from patron.keys.models import SystemKey

__all__ = ["SYSTEM_PURPOSES", "KeyService", "SystemPurpose", "member_owner", "system_owner"]

SYSTEM_PURPOSES: tuple[SystemPurpose, ...] = get_args(SystemPurpose)
DATA_KEY_BYTES = 32


def member_owner(member_key: str) -> str:
    """The owner a member's data key is wrapped for."""
    return f"member:{member_key}"


def system_owner(purpose: str) -> str:
    """The owner a system key is wrapped for."""
    return f"system:{purpose}"


def _insert_ignore(dialect: str) -> Any:
    stmt = sqlite_insert(SystemKey) if dialect == "sqlite" else pg_insert(SystemKey)
    return stmt.on_conflict_do_nothing(index_elements=["purpose"])


class KeyService:
    """Hands out the installation's system keys and wraps and unwraps member data keys."""

    def __init__(self, store: OperationalStore, keyring: MasterKeyring) -> None:
        self.store = store
        self.keyring = keyring
        self._lock = threading.Lock()
        self._system: dict[str, bytes] = {}
        self._loading = threading.local()
        self._unprepared = True

    def system_key(self, purpose: SystemPurpose) -> bytes:
        """The key for ``purpose``; the first call in a store makes the system keys."""
        with self._lock:
            if purpose not in self._system:
                self._loading.active = True  # the loading connections' own begin events must not re-enter
                try:
                    self._system = self._load_system_keys()
                    self._unprepared = False
                finally:
                    self._loading.active = False
            return self._system[purpose]

    def ensure_system_keys(self) -> None:
        """Make (or adopt) the system keys now if the store has none yet."""
        self.system_key(SYSTEM_PURPOSES[0])

    def forget(self) -> None:
        """Drop the cached system keys (after the store's rows were replaced, as by a restore)."""
        with self._lock:
            self._system = {}
            self._unprepared = True

    def prepare(self, *_: object) -> None:
        """Make the system keys before a transaction starts, if the store is migrated (best effort).

        Meant for the engine's ``begin`` event on SQLite, whose single writer
        would otherwise make a first use inside a writing transaction wait for
        its own lock. Errors are left for the first real use to report.
        """
        if not self._unprepared or getattr(self._loading, "active", False):
            return
        self._loading.active = True
        try:
            present = inspect(self.store.engine).has_table("system_keys")
        except SQLAlchemyError:
            present = False
        finally:
            self._loading.active = False
        if present:
            try:
                self.ensure_system_keys()
                self._unprepared = False
            except (PatronError, SQLAlchemyError):
                pass  # no usable key: reported when a key is needed

    def _load_system_keys(self) -> dict[str, bytes]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(SystemKey.purpose, SystemKey.master_key_id, SystemKey.wrapped)).all()
        missing = [p for p in SYSTEM_PURPOSES if p not in {row.purpose for row in rows}]
        if missing:
            with self.store.engine.begin() as conn:
                self._bootstrap(conn, missing)
            with self.store.engine.connect() as conn:
                rows = conn.execute(select(SystemKey.purpose, SystemKey.master_key_id, SystemKey.wrapped)).all()
        return {
            row.purpose: self.keyring.get(row.master_key_id).unwrap(system_owner(row.purpose), bytes(row.wrapped))
            for row in rows
        }

    def _bootstrap(self, conn: Connection, missing: list[SystemPurpose]) -> None:
        """Insert the missing system keys (another process may win the race; its keys are kept)."""
        uses = legacy_uses(conn) & set(missing)
        legacy = legacy_master(conn, self.keyring) if uses else None
        active = self.keyring.active()
        rows = []
        for purpose in missing:
            if legacy is not None and purpose in uses:
                secret, origin = derived_key(legacy.secret, purpose), "derived"
            else:
                secret, origin = os.urandom(DATA_KEY_BYTES), "random"
            rows.append(
                {
                    "purpose": purpose,
                    "master_key_id": active.id,
                    "wrapped": active.wrap(system_owner(purpose), secret),
                    "origin": origin,
                    "created_at": utcnow(),
                }
            )
        conn.execute(_insert_ignore(self.store.dialect), rows)

    @staticmethod
    def new_data_key() -> bytes:
        """A fresh random member data key."""
        return os.urandom(DATA_KEY_BYTES)

    def wrap_member_key(self, master: MasterKey, member_key: str, data_key: bytes) -> bytes:
        """``data_key`` wrapped for ``member_key`` under ``master``."""
        return master.wrap(member_owner(member_key), data_key)

    def open_member_key(self, member_key: str, master_key_id: str, wrapped: bytes) -> bytes:
        """A member's data key, unwrapped with the master key its row names."""
        return self.keyring.get(master_key_id).unwrap(member_owner(member_key), bytes(wrapped))
