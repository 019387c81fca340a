"""Ledger writes as one call of a PostgreSQL function each (migrations ``0010``, ``0013`` and ``0016``).

An ``*_call`` function checks its input exactly as the Python path does and
returns a :class:`DatabaseCall`: the statement, its parameters and the response
the write will give but for what only the database knows (the transaction id;
for a reversal, everything it works out). :func:`run_call` runs one on a
psycopg cursor, optionally with an idempotency claim, and maps the
function's errors to the ConflictErrors the Python path raises.

The calls go to the driver directly, without SQLAlchemy's statement machinery:
the whole write is one round trip, and the client's share of its cost is what
limits the ledger's throughput on a shared machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError, ValidationError
from patron.loyalty.ledger_posting import Leg, aware, check_member_key, check_name, check_points
from patron.loyalty.ledger_schemas import MAX_POINTS

__all__ = [
    "DatabaseCall",
    "DriverConnection",
    "DriverCursor",
    "adjust_call",
    "driver_connection",
    "earn_call",
    "in_database",
    "redeem_call",
    "reverse_call",
    "run_call",
]

DriverConnection = psycopg.Connection[Any]
DriverCursor = psycopg.Cursor[Any]

_EARN_SQL = (
    "SELECT txn_id, stored FROM patron_ledger_earn(%(scope)s::text, %(key)s::text, %(hash)s::text,"
    " %(response)s::json, %(kind)s::text, %(member)s::text, %(points)s::bigint, %(from_type)s::text,"
    " %(from_name)s::text, %(reference)s::text, %(natural_key)s::text, %(actor)s::text, %(memo)s::text,"
    " %(now)s::timestamptz, %(pending)s::boolean, %(pending_until)s::timestamptz, %(expires_at)s::timestamptz,"
    " %(earned)s::bigint)"
)
_REDEEM_SQL = (
    "SELECT txn_id, stored FROM patron_ledger_redeem(%(scope)s::text, %(key)s::text, %(hash)s::text,"
    " %(response)s::json, %(kind)s::text, %(member)s::text, %(points)s::bigint, %(to_type)s::text,"
    " %(to_name)s::text, %(reference)s::text, %(natural_key)s::text, %(actor)s::text, %(memo)s::text,"
    " %(now)s::timestamptz, %(redeemed)s::bigint)"
)
_REVERSE_SQL = (
    "SELECT replayed, response FROM patron_ledger_reverse(%(scope)s::text, %(key)s::text, %(hash)s::text,"
    " %(response)s::json, %(reference)s::text, %(actor)s::text, %(memo)s::text, %(now)s::timestamptz)"
)


@dataclass(frozen=True)
class DatabaseCall:
    """One checked ledger write for a PostgreSQL function: its statement, parameters and response but the id.

    A reversal's function works out the whole response itself (``{"reversal": ...}``);
    its template is the transaction's fields known before the call.
    """

    sql: str
    params: dict[str, Any]
    template: dict[str, Any]
    kind: str
    reference: str | None


def in_database(session: Session) -> bool:
    """Whether ledger writes on this session run as database functions (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def driver_connection(session: Session) -> DriverConnection:
    """The psycopg connection under the session's transaction."""
    return cast(DriverConnection, session.connection().connection.driver_connection)


def _template(
    kind: str,
    member_key: str,
    reference: str | None,
    points: int,
    actor: str,
    memo: str,
    now: datetime,
    legs: list[Leg],
) -> dict[str, Any]:
    """The response of a transaction about to be written, as ``LedgerTransactionRead`` dumps it, but for its id."""
    return {
        "id": 0,
        "kind": kind,
        "member_key": member_key,
        "reference": reference,
        "points": points,
        "shortfall": 0,
        "actor": actor,
        "memo": memo,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "entries": [{"account": f"{t}:{n}", "amount": a} for t, n, a in legs],
    }


def run_call(
    cursor: DriverCursor,
    call: DatabaseCall,
    scope: str | None = None,
    key: str | None = None,
    digest: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Run the call on ``cursor`` (with an idempotency claim when ``scope`` is given); returns ``(response, replayed)``.

    A refused write is the ConflictError the Python path raises; the statement
    failed, so a surrounding transaction must roll back.
    """
    params = {**call.params, "scope": scope, "key": key, "hash": digest, "response": json.dumps(call.template)}
    try:
        cursor.execute(call.sql, params)
        row = cursor.fetchone()
    except psycopg.Error as exc:
        code, diag = exc.sqlstate, exc.diag
        if code == "PT402":
            raise ConflictError(diag.message_primary or "not enough points") from exc
        if code == "PT409":
            raise ConflictError(f"idempotency key {key!r} was used with a different request") from exc
        if code == "23505" and diag.constraint_name == "uq_ledger_transactions_natural_key":
            raise ConflictError(f"reference {call.reference!r} was already used for {call.kind}") from exc
        if code == "23514" and diag.table_name == "points_wallets":  # pragma: no cover - backstop
            raise ConflictError(f"member {call.params.get('member')} does not have enough points") from exc
        raise
    assert row is not None  # the functions return one row
    if call.kind == "reverse":
        return dict(row[1]), bool(row[0])
    if row[0] is None:
        return dict(row[1]), True
    return {**call.template, "id": int(row[0])}, False


def earn_call(
    *,
    member_key: str,
    points: int,
    source: str,
    reference: str,
    expires_at: datetime | None,
    pending_until: datetime | None,
    actor: str,
    memo: str = "",
) -> DatabaseCall:
    """An earn, checked as :func:`patron.loyalty.ledger.python_earn` checks, for ``patron_ledger_earn``."""
    check_member_key(member_key)
    check_points(points)
    source = check_name(source, "source", 64)
    reference = check_name(reference, "reference", 120)
    now = utcnow()
    pending_until = None if pending_until is None else aware(pending_until)
    expires_at = None if expires_at is None else aware(expires_at)
    if expires_at is not None and expires_at <= max(now, pending_until or now):
        raise ValidationError("expires_at must be after now and after pending_until", field="expires_at")
    pending = pending_until is not None and pending_until > now
    actor, memo = actor[:128], memo[:512]
    legs = [("source", source, -points), ("pending" if pending else "available", member_key, points)]
    params = {
        "kind": "earn",
        "member": member_key,
        "points": points,
        "from_type": "source",
        "from_name": source,
        "reference": reference,
        "natural_key": f"earn:{reference}",
        "actor": actor,
        "memo": memo,
        "now": now,
        "pending": pending,
        "pending_until": pending_until if pending else None,
        "expires_at": expires_at,
        "earned": points,
    }
    template = _template("earn", member_key, reference, points, actor, memo, now, legs)
    return DatabaseCall(_EARN_SQL, params, template, "earn", reference)


def _spend_params(
    kind: str, member_key: str, points: int, to: tuple[str, str], reference: str | None, actor: str, memo: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    now = utcnow()
    actor, memo = actor[:128], memo[:512]
    params = {
        "kind": kind,
        "member": member_key,
        "points": points,
        "to_type": to[0],
        "to_name": to[1],
        "reference": reference,
        "natural_key": None if reference is None else f"{kind}:{reference}",
        "actor": actor,
        "memo": memo,
        "now": now,
        "redeemed": points if kind == "redeem" else 0,
    }
    legs = [("available", member_key, -points), (to[0], to[1], points)]
    return params, _template(kind, member_key, reference, points, actor, memo, now, legs)


def redeem_call(*, member_key: str, points: int, sink: str, reference: str, actor: str, memo: str = "") -> DatabaseCall:
    """A redemption, checked as :func:`patron.loyalty.ledger.python_redeem` checks, for ``patron_ledger_redeem``."""
    check_member_key(member_key)
    check_points(points)
    sink = check_name(sink, "sink", 64)
    reference = check_name(reference, "reference", 120)
    params, template = _spend_params("redeem", member_key, points, ("sink", sink), reference, actor, memo)
    return DatabaseCall(_REDEEM_SQL, params, template, "redeem", reference)


def adjust_call(*, member_key: str, points: int, reason: str, actor: str) -> DatabaseCall:
    """An adjustment, checked as :func:`patron.loyalty.ledger.python_adjust` checks; a credit earns, a debit spends."""
    check_member_key(member_key)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
        raise ValidationError(f"points must be a non-zero whole number within ±{MAX_POINTS}", field="points")
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) < 3:
        raise ValidationError("an adjustment needs a reason (at least 3 characters)", field="reason")
    size = abs(points)
    if points < 0:
        params, template = _spend_params("adjust", member_key, size, ("adjustment", "adjustment"), None, actor, reason)
        return DatabaseCall(_REDEEM_SQL, params, template, "adjust", None)
    now = utcnow()
    actor, memo = actor[:128], reason[:512]
    params = {
        "kind": "adjust",
        "member": member_key,
        "points": size,
        "from_type": "adjustment",
        "from_name": "adjustment",
        "reference": None,
        "natural_key": None,
        "actor": actor,
        "memo": memo,
        "now": now,
        "pending": False,
        "pending_until": None,
        "expires_at": None,
        "earned": 0,
    }
    legs = [("adjustment", "adjustment", -size), ("available", member_key, size)]
    template = _template("adjust", member_key, None, size, actor, memo, now, legs)
    return DatabaseCall(_EARN_SQL, params, template, "adjust", None)


def reverse_call(*, reference: str, actor: str, reason: str) -> DatabaseCall:
    """A reversal (see :mod:`patron.loyalty.ledger_reversal`) for ``patron_ledger_reverse``."""
    now = utcnow()
    actor, memo = actor[:128], reason[:512]
    params = {"reference": reference, "actor": actor, "memo": memo, "now": now}
    template = _template("reverse", "", reference, 0, actor, memo, now, [])
    return DatabaseCall(_REVERSE_SQL, params, template, "reverse", reference)
