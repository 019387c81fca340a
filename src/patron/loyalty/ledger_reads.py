"""Reading the ledger: balances, lots, history, points earned in a window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ValidationError
from patron.loyalty.ledger_models import LedgerTransaction, PointsLot, PointsWallet
from patron.loyalty.ledger_posting import aware, check_member_key, read_transactions
from patron.loyalty.ledger_schemas import BalanceRead, LedgerPage, LotRead

__all__ = ["EXPIRING_DAYS", "MAX_PAGE_SIZE", "balance", "earned_between", "history", "lots"]

EXPIRING_DAYS = 30
MAX_PAGE_SIZE = 500


def balance(session: Session, member_key: str) -> BalanceRead:
    """The member's balances (zeros for a member without points)."""
    check_member_key(member_key)
    wallet = session.get(PointsWallet, member_key)
    now = utcnow()
    soon = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.member_key == member_key,
            PointsLot.status == "active",
            PointsLot.expires_at <= now + timedelta(days=EXPIRING_DAYS),
        )
    )
    if wallet is None:
        return BalanceRead(
            member_key=member_key, available=0, pending=0, lifetime_earned=0, lifetime_redeemed=0, expiring_soon=0
        )
    return BalanceRead(
        member_key=member_key,
        available=wallet.available,
        pending=wallet.pending,
        lifetime_earned=wallet.lifetime_earned,
        lifetime_redeemed=wallet.lifetime_redeemed,
        expiring_soon=int(soon or 0),
        expiring_days=EXPIRING_DAYS,
    )


def earned_between(session: Session, member_key: str, start: datetime, end: datetime) -> int:
    """Points earned in ``[start, end)`` and not reversed (pending included; adjustments excluded)."""
    check_member_key(member_key)
    start, end = aware(start), aware(end)
    if start > end:
        raise ValidationError("start must not be after end", field="start")
    total = session.scalar(
        select(func.coalesce(func.sum(PointsLot.points), 0))
        .join(LedgerTransaction, LedgerTransaction.id == PointsLot.transaction_id)
        .where(
            PointsLot.member_key == member_key,
            LedgerTransaction.kind == "earn",
            PointsLot.status != "cancelled",
            PointsLot.earned_at >= start,
            PointsLot.earned_at < end,
        )
    )
    return int(total or 0)


def lots(session: Session, member_key: str) -> list[LotRead]:
    """Every lot of the member, oldest first."""
    check_member_key(member_key)
    rows = session.scalars(select(PointsLot).where(PointsLot.member_key == member_key).order_by(PointsLot.id))
    return [
        LotRead(
            id=r.id,
            source=r.source,
            points=r.points,
            remaining=r.remaining,
            status=r.status,
            earned_at=aware(r.earned_at),
            pending_until=None if r.pending_until is None else aware(r.pending_until),
            expires_at=None if r.expires_at is None else aware(r.expires_at),
        )
        for r in rows
    ]


def history(session: Session, member_key: str, page: int = 1, page_size: int = 50) -> LedgerPage:
    """The member's transactions with their entries, newest first."""
    check_member_key(member_key)
    if page < 1:
        raise ValidationError("page starts at 1", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be 1 to {MAX_PAGE_SIZE}", field="page_size")
    where = LedgerTransaction.member_key == member_key
    total = session.scalar(select(func.count()).select_from(LedgerTransaction).where(where)) or 0
    ids = list(
        session.scalars(
            select(LedgerTransaction.id)
            .where(where)
            .order_by(LedgerTransaction.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    return LedgerPage(items=read_transactions(session, ids), total=total, page=page, page_size=page_size)
