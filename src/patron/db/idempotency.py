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
ledger's PostgreSQL functions): the statement runs alone, in autocommit, on a
psycopg cursor of the store's own (:meth:`OperationalStore.autocommit_cursor`), so
the whole write is one round trip and one transaction, with none of SQLAlchemy's
per-statement or per-checkout work on the client.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import (
    JSON,
    DateTime,
    Insert,
    Integer,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    select,
    update,
)
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


_RECORDS = cast(Table, IdempotencyRecord.__table__)
_FOUND = select(_RECORDS.c.request_hash, _RECORDS.c.response).where(
    _RECORDS.c.scope == bindparam("p_scope"), _RECORDS.c.key == bindparam("p_key")
)
_STORE = update(_RECORDS).where(_RECORDS.c.id == bindparam("p_id")).values(response=bindparam("p_response"))


@functools.cache
def _claim(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of a key, built once per dialect."""
    module: Any
    if dialect == "postgresql":
        module = postgresql
    elif dialect == "sqlite":
        module = sqlite
    else:  # pragma: no cover
        raise ConflictError(f"idempotency keys are not supported on {dialect}")
    values = {
        "scope": bindparam("p_scope"),
        "key": bindparam("p_key"),
        "request_hash": bindparam("p_hash"),
        "response": {},
        "created_at": bindparam("p_now"),
    }
    statement: Insert = (
        module.insert(_RECORDS)
        .values(values)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(_RECORDS.c.id)
    )
    return statement


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
        params = {"p_scope": scope, "p_key": key, "p_hash": digest, "p_now": utcnow()}
        claimed = session.execute(_claim(session.get_bind().dialect.name), params).scalar()
        if claimed is None:
            found = session.execute(_FOUND, {"p_scope": scope, "p_key": key}).one()
            if found.request_hash != digest:
                raise ConflictError(f"idempotency key {key!r} was used with a different request")
            return dict(found.response), True
        response = action(session)
        session.execute(_STORE, {"p_id": claimed, "p_response": response})
        return response, False


def run_idempotent_in_database(
    store: OperationalStore,
    key: str,
    request: Mapping[str, Any],
    call: Callable[[psycopg.Cursor[Any], str], tuple[dict[str, Any], bool]],
) -> tuple[dict[str, Any], bool]:
    """Like :func:`run_idempotent`, for a ``call(cursor, request_hash)`` that is one statement doing it all.

    The statement claims the key, replays or refuses as :func:`run_idempotent`
    does, else writes and stores its response; it runs in autocommit on one of
    the store's autocommit cursors, so it is its own transaction (a failure keeps
    nothing, not even the key).
    """
    validate_key(key)
    digest = request_hash(request)
    with store.autocommit_cursor() as cursor:
        return call(cursor, digest)
