"""The points ledger: double-entry, append-only, never negative.

Every movement is a balanced transaction between accounts (a member's
``available`` and ``pending`` wallets, an earning ``source``, a redemption
``sink``, ``expiry``, ``adjustment``). Earned points form lots with their own
expiry; a redemption spends the earliest-expiring lots first, then the oldest.
Functions taking a Session never commit: the caller's transaction holds, and a
ConflictError or ValidationError means the caller must roll it back. The
store-level wrappers with idempotency keys are in :mod:`patron.loyalty.ledger_service`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError, ValidationError
from patron.loyalty.ledger_jobs import activate_due, expire_due, settle
from patron.loyalty.ledger_posting import (
    EARN_SQL,
    REDEEM_SQL,
    DatabaseCall,
    Leg,
    LiveLot,
    aware,
    change_lots,
    check_member_key,
    check_points,
    in_database,
    lock_and_credit,
    lock_wallets,
    move_wallet,
    new_lot,
    post,
    run_call,
)
from patron.loyalty.ledger_reads import balance, earned_between, history, lots
from patron.loyalty.ledger_reversal import reverse
from patron.loyalty.ledger_schemas import MAX_POINTS, LedgerEntryRead, LedgerTransactionRead

__all__ = [
    "activate_due",
    "adjust",
    "adjust_call",
    "balance",
    "earn",
    "earn_call",
    "earned_between",
    "expire_due",
    "history",
    "lots",
    "python_adjust",
    "python_earn",
    "python_redeem",
    "redeem",
    "redeem_call",
    "reverse",
]


def _name(value: str, field: str, limit: int) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > limit:
        raise ValidationError(f"{field} must be 1 to {limit} characters", field=field)
    return value


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
    """The response of a transaction about to be written, but for its id (filled in by the database)."""
    return LedgerTransactionRead(
        id=0,
        kind=kind,
        member_key=member_key,
        reference=reference,
        points=points,
        actor=actor,
        memo=memo,
        created_at=now,
        entries=[LedgerEntryRead(account=f"{t}:{n}", amount=a) for t, n, a in legs],
    ).model_dump(mode="json")


def _in_session(session: Session, call: DatabaseCall) -> LedgerTransactionRead:
    """Run the call in the session's transaction, after its pending changes (as the Python path's autoflush)."""
    session.flush()
    return LedgerTransactionRead.model_validate(run_call(session.connection(), call)[0])


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
    """:func:`earn`, checked as it checks, as one call of the PostgreSQL function ``patron_ledger_earn``."""
    check_member_key(member_key)
    check_points(points)
    source = _name(source, "source", 64)
    reference = _name(reference, "reference", 120)
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
    return DatabaseCall(EARN_SQL, params, template, "earn", reference)


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
    """:func:`redeem`, checked as it checks, as one call of the PostgreSQL function ``patron_ledger_redeem``."""
    check_member_key(member_key)
    check_points(points)
    sink = _name(sink, "sink", 64)
    reference = _name(reference, "reference", 120)
    params, template = _spend_params("redeem", member_key, points, ("sink", sink), reference, actor, memo)
    return DatabaseCall(REDEEM_SQL, params, template, "redeem", reference)


def adjust_call(*, member_key: str, points: int, reason: str, actor: str) -> DatabaseCall:
    """:func:`adjust`, checked as it checks, as one call of ``patron_ledger_earn`` or ``patron_ledger_redeem``."""
    check_member_key(member_key)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
        raise ValidationError(f"points must be a non-zero whole number within ±{MAX_POINTS}", field="points")
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) < 3:
        raise ValidationError("an adjustment needs a reason (at least 3 characters)", field="reason")
    size = abs(points)
    if points < 0:
        params, template = _spend_params("adjust", member_key, size, ("adjustment", "adjustment"), None, actor, reason)
        return DatabaseCall(REDEEM_SQL, params, template, "adjust", None)
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
    return DatabaseCall(EARN_SQL, params, template, "adjust", None)


def earn(
    session: Session,
    *,
    member_key: str,
    points: int,
    source: str,
    reference: str,
    expires_at: datetime | None,
    pending_until: datetime | None,
    actor: str,
    memo: str = "",
) -> LedgerTransactionRead:
    """Credit a new lot of points from ``source`` for ``reference`` (single-use per earn).

    With ``pending_until`` in the future the points stay pending (not spendable)
    until :func:`activate_due` runs at or after that moment. On PostgreSQL this
    is one call of ``patron_ledger_earn``; elsewhere :func:`python_earn`.
    """
    if in_database(session):
        call = earn_call(
            member_key=member_key,
            points=points,
            source=source,
            reference=reference,
            expires_at=expires_at,
            pending_until=pending_until,
            actor=actor,
            memo=memo,
        )
        return _in_session(session, call)
    return python_earn(
        session,
        member_key=member_key,
        points=points,
        source=source,
        reference=reference,
        expires_at=expires_at,
        pending_until=pending_until,
        actor=actor,
        memo=memo,
    )


def python_earn(
    session: Session,
    *,
    member_key: str,
    points: int,
    source: str,
    reference: str,
    expires_at: datetime | None,
    pending_until: datetime | None,
    actor: str,
    memo: str = "",
) -> LedgerTransactionRead:
    """:func:`earn` in Python statements: the reference implementation, used on SQLite."""
    check_member_key(member_key)
    check_points(points)
    source = _name(source, "source", 64)
    reference = _name(reference, "reference", 120)
    now = utcnow()
    pending_until = None if pending_until is None else aware(pending_until)
    expires_at = None if expires_at is None else aware(expires_at)
    if expires_at is not None and expires_at <= max(now, pending_until or now):
        raise ValidationError("expires_at must be after now and after pending_until", field="expires_at")
    pending = pending_until is not None and pending_until > now
    wallet_account = "pending" if pending else "available"
    if pending:
        lock_and_credit(session, member_key, now, pending=points, earned=points)
    else:
        lock_and_credit(session, member_key, now, available=points, earned=points)
    txn = post(
        session,
        kind="earn",
        member_key=member_key,
        points=points,
        legs=[("source", source, -points), (wallet_account, member_key, points)],
        actor=actor,
        now=now,
        reference=reference,
        natural_key=f"earn:{reference}",
        memo=memo,
    )
    new_lot(
        session,
        txn_id=txn.id,
        member_key=member_key,
        source=source,
        points=points,
        status="pending" if pending else "active",
        now=now,
        pending_until=pending_until if pending else None,
        expires_at=expires_at,
    )
    return txn


def _plan(lots: list[LiveLot], member_key: str, points: int) -> list[tuple[int, int]]:
    """Which active lots give how many points, earliest-expiring first; ConflictError when short."""
    active = [lot for lot in lots if lot.status == "active"]
    have = sum(lot.remaining for lot in active)
    if have < points:
        raise ConflictError(f"member {member_key} has {have} available points; {points} needed")
    plan: list[tuple[int, int]] = []
    left = points
    for lot in active:
        if left == 0:
            break
        take = min(lot.remaining, left)
        plan.append((lot.id, take))
        left -= take
    return plan


def redeem(
    session: Session, *, member_key: str, points: int, sink: str, reference: str, actor: str, memo: str = ""
) -> LedgerTransactionRead:
    """Spend available points into ``sink`` for ``reference`` (single-use per redemption).

    ConflictError when the member has fewer available points (after what is due
    has been activated and expired) or the reference was redeemed already. On
    PostgreSQL this is one call of ``patron_ledger_redeem``; elsewhere :func:`python_redeem`.
    """
    if in_database(session):
        call = redeem_call(member_key=member_key, points=points, sink=sink, reference=reference, actor=actor, memo=memo)
        return _in_session(session, call)
    return python_redeem(
        session, member_key=member_key, points=points, sink=sink, reference=reference, actor=actor, memo=memo
    )


def python_redeem(
    session: Session, *, member_key: str, points: int, sink: str, reference: str, actor: str, memo: str = ""
) -> LedgerTransactionRead:
    """:func:`redeem` in Python statements: the reference implementation, used on SQLite."""
    check_member_key(member_key)
    check_points(points)
    sink = _name(sink, "sink", 64)
    reference = _name(reference, "reference", 120)
    now = utcnow()
    lock_wallets(session, [member_key], now)
    live, _, _ = settle(session, member_key, now)
    plan = _plan(live, member_key, points)
    txn = post(
        session,
        kind="redeem",
        member_key=member_key,
        points=points,
        legs=[("available", member_key, -points), ("sink", sink, points)],
        actor=actor,
        now=now,
        reference=reference,
        natural_key=f"redeem:{reference}",
        memo=memo,
    )
    change_lots(session, txn.id, [(lot_id, take, "consumed", None) for lot_id, take in plan])
    move_wallet(session, member_key, available=-points, redeemed=points)
    return txn


def adjust(session: Session, *, member_key: str, points: int, reason: str, actor: str) -> LedgerTransactionRead:
    """A manual correction by an authorized operator; ``reason`` is required and kept as the memo.

    A credit becomes a new lot without expiry; a debit spends lots like a
    redemption and is a ConflictError beyond the available balance. On
    PostgreSQL this is one database call; elsewhere :func:`python_adjust`.
    """
    if in_database(session):
        call = adjust_call(member_key=member_key, points=points, reason=reason, actor=actor)
        return _in_session(session, call)
    return python_adjust(session, member_key=member_key, points=points, reason=reason, actor=actor)


def python_adjust(session: Session, *, member_key: str, points: int, reason: str, actor: str) -> LedgerTransactionRead:
    """:func:`adjust` in Python statements: the reference implementation, used on SQLite."""
    check_member_key(member_key)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
        raise ValidationError(f"points must be a non-zero whole number within ±{MAX_POINTS}", field="points")
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) < 3:
        raise ValidationError("an adjustment needs a reason (at least 3 characters)", field="reason")
    now = utcnow()
    size = abs(points)
    if points > 0:
        lock_and_credit(session, member_key, now, available=size)
        legs = [("adjustment", "adjustment", -size), ("available", member_key, size)]
        plan: list[tuple[int, int]] = []
    else:
        lock_wallets(session, [member_key], now)
        live, _, _ = settle(session, member_key, now)
        plan = _plan(live, member_key, size)
        legs = [("available", member_key, -size), ("adjustment", "adjustment", size)]
    txn = post(session, kind="adjust", member_key=member_key, points=size, legs=legs, actor=actor, now=now, memo=reason)
    if points > 0:
        new_lot(
            session, txn_id=txn.id, member_key=member_key, source="adjustment", points=size, status="active", now=now
        )
    else:
        change_lots(session, txn.id, [(lot_id, take, "consumed", None) for lot_id, take in plan])
        move_wallet(session, member_key, available=points)
    return txn
