"""Ledger primitives: wallet locks, balanced postings, lot movements. Nothing here commits.

Every write to a member's points starts with :func:`lock_wallets`, which
upserts the member's wallet row with ``ON CONFLICT DO UPDATE``: on PostgreSQL
that locks the row until the transaction ends (other writers for the member
wait, writers for other members do not); on SQLite the statement takes the
database's write lock (SQLite has one writer at a time). Locks are taken in
member-key order, so two transactions never wait on each other in a cycle.
Everything read after the lock is current, so no check-then-act race exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.errors import ConflictError, ValidationError
from patron.loyalty.ledger_models import (
    LedgerEntry,
    LedgerTransaction,
    LotAllocation,
    PointsLot,
    PointsWallet,
)
from patron.loyalty.ledger_schemas import MAX_POINTS, MEMBER_KEY_PATTERN, LedgerEntryRead, LedgerTransactionRead

__all__ = [
    "Leg",
    "LiveLot",
    "aware",
    "check_member_key",
    "check_points",
    "change_lot",
    "live_lots",
    "lock_wallets",
    "move_wallet",
    "new_lot",
    "post",
    "read_transactions",
]

_MEMBER_KEY = re.compile(MEMBER_KEY_PATTERN)
Leg = tuple[str, str, int]  # (account_type, account_name, amount)


def aware(moment: datetime) -> datetime:
    """The moment in UTC; a naive value (SQLite hands them back) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_member_key(member_key: str) -> str:
    """The key itself, or a ValidationError naming ``member_key``."""
    if not isinstance(member_key, str) or not _MEMBER_KEY.match(member_key):
        raise ValidationError("a member key is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'", field="member_key")
    return member_key


def check_points(points: int, *, field: str = "points") -> int:
    """A positive whole number of points, at most MAX_POINTS."""
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise ValidationError(f"points must be a whole number from 1 to {MAX_POINTS}", field=field)
    return points


def _upsert_wallet(session: Session, member_key: str, now: datetime) -> Insert:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    values = {
        "member_key": member_key,
        "available": 0,
        "pending": 0,
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "updated_at": now,
    }
    statement = module.insert(PointsWallet).values(values)
    insert_statement: Insert = statement.on_conflict_do_update(
        index_elements=["member_key"], set_={"updated_at": statement.excluded.updated_at}
    )
    return insert_statement


def lock_wallets(session: Session, member_keys: Iterable[str], now: datetime) -> None:
    """Create (if new) and lock each member's wallet, in key order."""
    for member_key in sorted(set(member_keys)):
        session.execute(_upsert_wallet(session, member_key, now))


def move_wallet(
    session: Session, member_key: str, *, available: int = 0, pending: int = 0, earned: int = 0, redeemed: int = 0
) -> None:
    """Apply deltas to a locked wallet; the CHECK constraints refuse a negative balance."""
    if not (available or pending or earned or redeemed):
        return
    try:
        session.execute(
            update(PointsWallet)
            .where(PointsWallet.member_key == member_key)
            .values(
                available=PointsWallet.available + available,
                pending=PointsWallet.pending + pending,
                lifetime_earned=PointsWallet.lifetime_earned + earned,
                lifetime_redeemed=PointsWallet.lifetime_redeemed + redeemed,
            )
        )
    except IntegrityError as exc:  # pragma: no cover - the services check first; this is the backstop
        raise ConflictError(f"member {member_key} does not have enough points") from exc


def post(
    session: Session,
    *,
    kind: str,
    member_key: str,
    points: int,
    legs: Sequence[Leg],
    actor: str,
    now: datetime,
    reference: str | None = None,
    natural_key: str | None = None,
    memo: str = "",
    shortfall: int = 0,
) -> int:
    """Record a transaction and its legs; the legs must sum to zero. Returns its id."""
    legs = [leg for leg in legs if leg[2] != 0]
    if sum(leg[2] for leg in legs) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {legs}")
    row = {
        "kind": kind,
        "member_key": member_key,
        "reference": reference,
        "natural_key": natural_key,
        "points": points,
        "shortfall": shortfall,
        "actor": actor[:128],
        "memo": memo[:512],
        "created_at": now,
    }
    try:
        txn_id = session.execute(insert(LedgerTransaction).values(row).returning(LedgerTransaction.id)).scalar_one()
    except IntegrityError as exc:  # the unique natural key: the caller's transaction must roll back
        raise ConflictError(f"reference {reference!r} was already used for {kind}") from exc
    if legs:
        session.execute(
            insert(LedgerEntry),
            [{"transaction_id": txn_id, "account_type": t, "account_name": n, "amount": a} for t, n, a in legs],
        )
    return txn_id


def new_lot(
    session: Session,
    *,
    txn_id: int,
    member_key: str,
    source: str,
    points: int,
    status: str,
    now: datetime,
    pending_until: datetime | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Insert a lot holding all its points; returns its id."""
    return session.execute(
        insert(PointsLot)
        .values(
            member_key=member_key,
            transaction_id=txn_id,
            source=source,
            points=points,
            remaining=points,
            status=status,
            earned_at=now,
            pending_until=pending_until,
            expires_at=expires_at,
        )
        .returning(PointsLot.id)
    ).scalar_one()


@dataclass(frozen=True)
class LiveLot:
    """A pending or active lot as read under the member's lock."""

    id: int
    status: str
    remaining: int
    points: int
    source: str
    pending_until: datetime | None
    expires_at: datetime | None


def live_lots(session: Session, member_key: str) -> list[LiveLot]:
    """The member's pending and active lots, earliest-expiring first (no expiry last), then oldest (lowest id)."""
    rows = session.execute(
        select(
            PointsLot.id,
            PointsLot.status,
            PointsLot.remaining,
            PointsLot.points,
            PointsLot.source,
            PointsLot.pending_until,
            PointsLot.expires_at,
        )
        .where(PointsLot.member_key == member_key, PointsLot.status.in_(("pending", "active")))
        .order_by(PointsLot.expires_at.asc().nulls_last(), PointsLot.id)
    )
    return [
        LiveLot(
            r.id,
            r.status,
            r.remaining,
            r.points,
            r.source,
            None if r.pending_until is None else aware(r.pending_until),
            None if r.expires_at is None else aware(r.expires_at),
        )
        for r in rows
    ]


def change_lot(
    session: Session, txn_id: int, lot_id: int, taken: int, *, emptied: str, status: str | None = None
) -> None:
    """Take ``taken`` points from a lot (negative gives back), record the allocation.

    The lot becomes ``emptied`` when nothing remains, else ``status`` (or keeps its own).
    """
    left = PointsLot.remaining - taken
    session.execute(
        update(PointsLot)
        .where(PointsLot.id == lot_id)
        .values(remaining=left, status=case((left == 0, emptied), else_=status or PointsLot.status))
    )
    if taken:
        session.execute(insert(LotAllocation).values(transaction_id=txn_id, lot_id=lot_id, points=taken))


def read_transactions(session: Session, txn_ids: Sequence[int]) -> list[LedgerTransactionRead]:
    """The transactions with their entries, in the order of ``txn_ids``."""
    if not txn_ids:
        return []
    txns = {t.id: t for t in session.scalars(select(LedgerTransaction).where(LedgerTransaction.id.in_(txn_ids)))}
    legs: dict[int, list[LedgerEntryRead]] = {i: [] for i in txn_ids}
    entries = select(LedgerEntry).where(LedgerEntry.transaction_id.in_(txn_ids)).order_by(LedgerEntry.id)
    for entry in session.scalars(entries):
        legs[entry.transaction_id].append(
            LedgerEntryRead(account=f"{entry.account_type}:{entry.account_name}", amount=entry.amount)
        )
    return [
        LedgerTransactionRead(
            id=t.id,
            kind=t.kind,
            member_key=t.member_key,
            reference=t.reference,
            points=t.points,
            shortfall=t.shortfall,
            actor=t.actor,
            memo=t.memo,
            created_at=aware(t.created_at),
            entries=legs[t.id],
        )
        for t in (txns[i] for i in txn_ids)
    ]
