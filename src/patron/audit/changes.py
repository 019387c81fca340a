"""Before -> after of the rows a request changes, for its audit entry.

While a request is being served, every ORM flush records, per changed row, the
table, the primary key and the old and new value of each changed column; the
request's audit entry carries them as ``changes``. Personal fields and secrets
never leave as values: they show as ``"[redacted]"`` (sealed bytes always do).
Writes through SQLAlchemy Core (bulk paths, the ledger's database functions)
are not seen here; those records are append-only and audited by their callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["REDACTED", "CaptureChanges", "capturing", "install", "take"]

REDACTED = "[redacted]"
# Columns holding secrets, in any table; every column but the key of the tables holding personal data.
_SECRET_COLUMNS = frozenset(
    {
        "password_hash",
        "mfa_secret",
        "mfa_last_step",
        "webhook_secret",
        "key_hash",
        "token_hash",
        "secret",
        "wrapped_key",
    }
)
_PERSONAL_TABLES = frozenset({"member_vault", "member_identities"})
_PERSONAL_KEEP = frozenset({"member_key"})
# Tables whose rows are records in their own right or bookkeeping, not objects an operator edits.
_SKIPPED_TABLES = frozenset({"audit_log", "audit_chain_head", "idempotency_records", "operator_sessions"})
_MAX_ROWS = 50
_MAX_TEXT = 200

_CAPTURE: ContextVar[list[dict[str, Any]] | None] = ContextVar("patron_audit_changes", default=None)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return REDACTED
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | tuple):
        text = repr(value)
        return value if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _shown(table: str, column: str, value: Any) -> Any:
    secret = column in _SECRET_COLUMNS or (table in _PERSONAL_TABLES and column not in _PERSONAL_KEEP)
    return REDACTED if secret and value is not None else _plain(value)


def _row(obj: Any, op: str) -> dict[str, Any] | None:
    state = inspect(obj)
    mapper = state.mapper
    table = mapper.persist_selectable.name if hasattr(mapper.persist_selectable, "name") else str(mapper.class_)
    if table in _SKIPPED_TABLES:
        return None
    key = [_plain(getattr(obj, col.key, None)) for col in mapper.primary_key]
    fields: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        history = state.attrs[attr.key].history
        if op == "update":
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before == after:
                continue
            fields[attr.key] = [_shown(table, attr.key, before), _shown(table, attr.key, after)]
        else:
            value = getattr(obj, attr.key, None)
            if value is not None:
                fields[attr.key] = _shown(table, attr.key, value)
    if op == "update" and not fields:
        return None
    side = {"insert": "after", "delete": "before", "update": "fields"}[op]
    return {"op": op, "table": table, "key": key[0] if len(key) == 1 else key, side: fields}


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    buffer = _CAPTURE.get()
    if buffer is None:
        return
    for op, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            if len(buffer) >= _MAX_ROWS:
                return
            row = _row(obj, op)
            if row is not None:
                buffer.append(row)


_installed = False


def install() -> None:
    """Listen to every session's flushes (once per process)."""
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _after_flush)
        _installed = True


@contextmanager
def capturing() -> Iterator[list[dict[str, Any]]]:
    """Collect the changes flushed in this context (a request) until it ends."""
    token = _CAPTURE.set([])
    try:
        yield _CAPTURE.get() or []
    finally:
        _CAPTURE.reset(token)


def take() -> list[dict[str, Any]]:
    """The changes collected so far in this context, emptying the buffer."""
    buffer = _CAPTURE.get()
    if not buffer:
        return []
    taken = list(buffer)
    buffer.clear()
    return taken


class CaptureChanges:
    """ASGI middleware: each HTTP request collects the changes it flushes (see ``take``)."""

    def __init__(self, app: ASGIApp) -> None:
        install()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with capturing():
            await self.app(scope, receive, send)
