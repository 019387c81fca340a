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

from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError, ValidationError
from patron.loyalty.ledger_calls import (
    DatabaseCall,
    adjust_call,
    driver_connection,
    earn_call,
    in_database,
    redeem_call,
    reverse_call,
    run_call,
)
from patron.loyalty.ledger_jobs import activate_due, expire_due, settle
from patron.loyalty.ledger_posting import (
    LiveLot,
    aware,
    change_lots,
    check_member_key,
    check_name,
    check_points,
    lock_and_credit,
    lock_wallets,
    move_wallet,
    new_lot,
    post,
)
from patron.loyalty.ledger_reads import balance, earned_between, history, lots
from patron.loyalty.ledger_reversal import python_reverse
from patron.loyalty.ledger_schemas import MAX_POINTS, LedgerTransactionRead, ReverseResult

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
    "python_reverse",
    "redeem",
    "redeem_call",
    "reverse",
    "reverse_call",
]


def _in_session(session: Session, call: DatabaseCall) -> LedgerTransactionRead:
    """Run the call in the session's transaction, after its pending changes (as the Python path's autoflush)."""
    session.flush()
    with driver_connection(session).cursor() as cursor:
        return LedgerTransactionRead.model_validate(run_call(cursor, call)[0])


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
    source = check_name(source, "source", 64)
    reference = check_name(reference, "reference", 120)
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
    sink = check_name(sink, "sink", 64)
    reference = check_name(reference, "reference", 120)
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


def reverse(session: Session, *, reference: str, actor: str, reason: str) -> LedgerTransactionRead | None:
    """Undo the earn and redemption recorded under ``reference``; None when nothing is left to undo.

    See :mod:`patron.loyalty.ledger_reversal`. On PostgreSQL this is one call of
    ``patron_ledger_reverse``; elsewhere :func:`python_reverse`.
    """
    if in_database(session):
        session.flush()
        call = reverse_call(reference=reference, actor=actor, reason=reason)
        with driver_connection(session).cursor() as cursor:
            response, _ = run_call(cursor, call)
        return ReverseResult.model_validate(response).reversal
    return python_reverse(session, reference=reference, actor=actor, reason=reason)
