"""Idempotency keys: a retried write returns its first result instead of running twice.

A write that a client may retry carries a key. :func:`run_idempotent` records
the key and the write's response in the same transaction as the write itself:

- a new key runs the action and stores its response;
- the same key with the same (canonical) request returns the stored response
  without running the action again (``replayed`` is true);
- the same key with a different request is a :class:`~patron.errors.ConflictError`.

The record is inserted *first* (``INSERT ... ON CONFLICT DO NOTHING``), so two
requests racing with one key serialize on the unique index: the loser waits for
the winner's transaction, then replays its response (or gets the conflict). On
SQLite that first insert also takes the database's write lock, which makes every
idempotent write a serialized transaction. A failed action rolls back with its
key, so a client may retry a request that failed.

:func:`run_idempotent_in_database` keeps the same contract for an action that
claims the key, writes and stores its response in one database statement (the
ledger's PostgreSQL functions): the statement runs alone, in autocommit, so the
whole write is one round trip and one transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Insert, Integer, String, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.db.base import Base, utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, ValidationError

__all__ = [
    "MAX_KEY_LENGTH",
    "IdempotencyRecord",
    "request_hash",
    "run_idempotent",
    "run_idempotent_in_database",
    "validate_key",
]

MAX_KEY_LENGTH = 255
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces


class IdempotencyRecord(Base):
    """The first response given to one idempotency key within a scope (an operation)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def validate_key(key: str) -> str:
    """The key itself, or a ValidationError naming ``idempotency_key``."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise ValidationError(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces",
            field="idempotency_key",
        )
    return key


def request_hash(request: Mapping[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys, no whitespace; dates as ISO text)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(session: Session, scope: str, key: str, digest: str) -> Insert:
    values = {"scope": scope, "key": key, "request_hash": digest, "response": {}, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return (
            postgresql.insert(IdempotencyRecord).values(values).on_conflict_do_nothing(index_elements=["scope", "key"])
        )
    if dialect == "sqlite":
        return sqlite.insert(IdempotencyRecord).values(values).on_conflict_do_nothing(index_elements=["scope", "key"])
    raise ConflictError(f"idempotency keys are not supported on {dialect}")  # pragma: no cover


def run_idempotent(
    store: OperationalStore,
    scope: str,
    key: str,
    request: Mapping[str, Any],
    action: Callable[[Session], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """Run ``action`` in one transaction together with recording the key; returns ``(response, replayed)``.

    Same key + same canonical request -> the stored response, ``replayed=True``,
    action not run; same key + different request -> ConflictError (HTTP 409).
    Safe when two requests with the same key race (the loser waits, then
    replays or gets the conflict).
    """
    validate_key(key)
    digest = request_hash(request)
    with store.session() as session:
        claimed = session.execute(_claim(session, scope, key, digest).returning(IdempotencyRecord.id)).scalar()
        if claimed is None:
            found = session.execute(
                select(IdempotencyRecord.request_hash, IdempotencyRecord.response).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            ).one()
            if found.request_hash != digest:
                raise ConflictError(f"idempotency key {key!r} was used with a different request")
            return dict(found.response), True
        response = action(session)
        session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == claimed).values(response=response))
        return response, False


def run_idempotent_in_database(
    store: OperationalStore,
    key: str,
    request: Mapping[str, Any],
    call: Callable[[Connection, str], tuple[dict[str, Any], bool]],
) -> tuple[dict[str, Any], bool]:
    """Like :func:`run_idempotent`, for a ``call(connection, request_hash)`` that is one statement doing it all.

    The statement claims the key, replays or refuses as :func:`run_idempotent`
    does, else writes and stores its response; it runs in autocommit, so it is
    its own transaction (a failure keeps nothing, not even the key).
    """
    validate_key(key)
    digest = request_hash(request)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return call(conn, digest)
