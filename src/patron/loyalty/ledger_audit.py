"""Reconciling the ledger: every invariant the tests, the benchmark and operators check.

An empty list means the ledger is sound:

- every transaction's entries sum to zero;
- each wallet's ``available`` and ``pending`` equal the sums of the member's
  entries on those accounts and the remaining points of the member's active
  and pending lots, and are never negative;
- each lot's ``remaining`` equals its points less its allocations;
- no reference was earned, redeemed or reversed twice.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.loyalty.ledger_models import (
    LedgerEntry,
    LedgerReversal,
    LedgerTransaction,
    LotAllocation,
    PointsLot,
    PointsWallet,
)

__all__ = ["ledger_anomalies"]


def _unbalanced(session: Session) -> list[str]:
    rows = session.execute(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    return [f"transaction {txn} is off by {total}" for txn, total in rows]


def _wallets(session: Session) -> list[str]:
    entries: dict[tuple[str, str], int] = defaultdict(int)
    for name, kind, total in session.execute(
        select(LedgerEntry.account_name, LedgerEntry.account_type, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.account_type.in_(("available", "pending")))
        .group_by(LedgerEntry.account_name, LedgerEntry.account_type)
    ):
        entries[(name, kind)] = int(total)
    lots: dict[tuple[str, str], int] = defaultdict(int)
    for member, status, total in session.execute(
        select(PointsLot.member_key, PointsLot.status, func.sum(PointsLot.remaining))
        .where(PointsLot.status.in_(("pending", "active")))
        .group_by(PointsLot.member_key, PointsLot.status)
    ):
        lots[(member, "available" if status == "active" else "pending")] = int(total)
    problems = []
    wallets = {w.member_key: w for w in session.scalars(select(PointsWallet))}
    members = set(wallets) | {m for m, _ in entries} | {m for m, _ in lots}
    for member in sorted(members):
        wallet = wallets.get(member)
        for account in ("available", "pending"):
            cached = 0 if wallet is None else int(getattr(wallet, account))
            summed, live = entries[(member, account)], lots[(member, account)]
            if cached < 0 or not cached == summed == live:
                problems.append(f"member {member} {account}: wallet {cached}, entries {summed}, live lots {live}")
    return problems


def _lots(session: Session) -> list[str]:
    allocated = (
        select(LotAllocation.lot_id, func.sum(LotAllocation.points).label("taken"))
        .group_by(LotAllocation.lot_id)
        .subquery()
    )
    rows = session.execute(
        select(PointsLot.id, PointsLot.points, PointsLot.remaining, PointsLot.status, allocated.c.taken).join(
            allocated, allocated.c.lot_id == PointsLot.id, isouter=True
        )
    )
    problems = []
    for lot_id, points, remaining, status, taken in rows:
        if remaining != points - int(taken or 0):
            problems.append(f"lot {lot_id}: remaining {remaining}, points {points}, allocated {taken}")
        if status == "active" and remaining == 0:
            problems.append(f"lot {lot_id} is active with nothing remaining")
    return problems


def _duplicates(session: Session) -> list[str]:
    rows = session.execute(
        select(LedgerTransaction.kind, LedgerTransaction.reference, func.count())
        .where(LedgerTransaction.kind.in_(("earn", "redeem")))
        .group_by(LedgerTransaction.kind, LedgerTransaction.reference)
        .having(func.count() > 1)
    )
    problems = [f"{kind} {reference!r} recorded {count} times" for kind, reference, count in rows]
    reversed_twice = session.execute(
        select(LedgerReversal.original_id, func.count()).group_by(LedgerReversal.original_id).having(func.count() > 1)
    )
    problems += [f"transaction {txn} reversed {count} times" for txn, count in reversed_twice]
    return problems


def ledger_anomalies(session: Session) -> list[str]:
    """Every broken invariant, described; empty when the ledger reconciles."""
    return _unbalanced(session) + _wallets(session) + _lots(session) + _duplicates(session)
