"""Ledger jobs: pending points become available after the return window; due points expire.

Both run per member under the member's wallet lock, so they never race a
redemption. Activation moves a lot's points from the pending to the available
account; expiry moves what remains of a due lot from the available account to
the expiry account. A redemption settles its member first (the same two steps
as of its own time), so points past their expiry are never spent even if the
scheduled job has not run yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.loyalty.ledger_models import PointsLot
from patron.loyalty.ledger_posting import LiveLot, aware, change_lots, live_lots, lock_wallets, move_wallet, post

__all__ = ["ACTIVATION_ACTOR", "EXPIRY_ACTOR", "Progress", "activate_due", "expire_due", "settle"]

ACTIVATION_ACTOR = "system:activation"
EXPIRY_ACTOR = "system:expiry"
Progress = Callable[[int, int], None]  # (members done, members in total)


def _activate(session: Session, member_key: str, lots: list[LiveLot], as_of: datetime) -> list[LiveLot]:
    due = [lot for lot in lots if lot.status == "pending" and lot.pending_until and lot.pending_until <= as_of]
    if not due:
        return lots
    total = sum(lot.remaining for lot in due)
    legs = [("pending", member_key, -total), ("available", member_key, total)]
    txn = post(
        session, kind="activate", member_key=member_key, points=total, legs=legs, actor=ACTIVATION_ACTOR, now=utcnow()
    )
    change_lots(session, txn.id, [(lot.id, 0, "active", "active") for lot in due])
    move_wallet(session, member_key, pending=-total, available=total)
    done = {lot.id for lot in due}
    return [replace(lot, status="active") if lot.id in done else lot for lot in lots]


def _expire(session: Session, member_key: str, lots: list[LiveLot], as_of: datetime) -> list[LiveLot]:
    due = [lot for lot in lots if lot.status == "active" and lot.expires_at and lot.expires_at <= as_of]
    if not due:
        return lots
    total = sum(lot.remaining for lot in due)
    legs = [("available", member_key, -total), ("expiry", "expiry", total)]
    txn = post(session, kind="expire", member_key=member_key, points=total, legs=legs, actor=EXPIRY_ACTOR, now=utcnow())
    change_lots(session, txn.id, [(lot.id, lot.remaining, "expired", None) for lot in due])
    move_wallet(session, member_key, available=-total)
    gone = {lot.id for lot in due}
    return [lot for lot in lots if lot.id not in gone]


def settle(session: Session, member_key: str, as_of: datetime) -> tuple[list[LiveLot], int, int]:
    """Activate and expire what is due for one locked member.

    Returns the member's live lots afterwards, the lots activated and the lots expired.
    """
    lots = live_lots(session, member_key)
    pending_before = sum(1 for lot in lots if lot.status == "pending")
    lots = _activate(session, member_key, lots, as_of)
    activated = pending_before - sum(1 for lot in lots if lot.status == "pending")
    live_before = len(lots)
    lots = _expire(session, member_key, lots, as_of)
    return lots, activated, live_before - len(lots)


def activate_due(session: Session, as_of: datetime) -> int:
    """Make available every pending lot whose window ended by ``as_of``; returns the lots activated."""
    as_of = aware(as_of)
    members = list(
        session.scalars(
            select(PointsLot.member_key)
            .distinct()
            .where(PointsLot.status == "pending", PointsLot.pending_until <= as_of)
        )
    )
    lock_wallets(session, members, utcnow())
    activated = 0
    for member_key in sorted(members):
        before = live_lots(session, member_key)
        after = _activate(session, member_key, before, as_of)
        activated += sum(1 for a, b in zip(after, before, strict=True) if a.status != b.status)
    return activated


def expire_due(store: OperationalStore, as_of: datetime, progress: Progress | None = None) -> int:
    """Expire what remains of every active lot due by ``as_of``, one member per transaction.

    Returns the lots expired. Safe to run again or alongside other writers.
    """
    as_of = aware(as_of)
    with store.session() as session:
        members = sorted(
            session.scalars(
                select(PointsLot.member_key)
                .distinct()
                .where(PointsLot.status == "active", PointsLot.expires_at <= as_of)
            )
        )
    expired = 0
    for done, member_key in enumerate(members, start=1):
        with store.session() as session:
            lock_wallets(session, [member_key], utcnow())
            lots = live_lots(session, member_key)
            expired += len(lots) - len(_expire(session, member_key, lots, as_of))
        if progress is not None:
            progress(done, len(members))
    return expired
