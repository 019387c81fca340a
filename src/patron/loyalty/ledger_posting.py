"""Ledger primitives: wallet locks, balanced postings, lot movements. Nothing here commits.

Every write to a member's points starts with :func:`lock_wallets`, which
upserts the member's wallet row with ``ON CONFLICT DO UPDATE``: on PostgreSQL
that locks the row until the transaction ends (other writers for the member
wait, writers for other members do not); on SQLite the statement takes the
database's write lock (SQLite has one writer at a time). Locks are taken in
member-key order, so two transactions never wait on each other in a cycle.
Everything read after the lock is current, so no check-then-act race exists.

Each statement is a round trip to the database, paid while the member's lock is
held, so the primitives keep them few: a credit rides on the locking upsert
(:func:`lock_and_credit`), a transaction and its entries are one statement on
PostgreSQL, lot changes go out as one batch, and :func:`post`
returns what it wrote instead of reading it back.

On PostgreSQL an earn, a redemption, an adjustment and a reversal are instead
one call of a PL/pgSQL function (migrations ``0010`` and ``0013``) doing the
same statements inside the database: see :mod:`patron.loyalty.ledger_calls`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Insert,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    update,
)
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
    "check_name",
    "check_points",
    "change_lot",
    "change_lots",
    "live_lots",
    "lock_and_credit",
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


def check_name(value: str, field: str, limit: int) -> str:
    """The name without surrounding spaces, 1 to ``limit`` characters, or a ValidationError naming ``field``."""
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > limit:
        raise ValidationError(f"{field} must be 1 to {limit} characters", field=field)
    return value


def check_points(points: int, *, field: str = "points") -> int:
    """A positive whole number of points, at most MAX_POINTS."""
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise ValidationError(f"points must be a whole number from 1 to {MAX_POINTS}", field=field)
    return points


# Statements are built once, on Core tables, and run with parameters: building a statement (and its cache key)
# per call cost more client time than running it.
_WALLETS = cast(Table, PointsWallet.__table__)
_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_LOTS = cast(Table, PointsLot.__table__)
_ALLOCATIONS = cast(Table, LotAllocation.__table__)


@functools.cache
def _upsert_statement(dialect: str, available: bool, pending: bool, earned: bool) -> Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(_WALLETS).values(
        member_key=bindparam("p_member"),
        available=bindparam("p_available"),
        pending=bindparam("p_pending"),
        lifetime_earned=bindparam("p_earned"),
        lifetime_redeemed=0,
        updated_at=bindparam("p_now"),
    )
    changes: dict[str, Any] = {"updated_at": statement.excluded.updated_at}
    if available:
        changes["available"] = _WALLETS.c.available + statement.excluded.available
    if pending:
        changes["pending"] = _WALLETS.c.pending + statement.excluded.pending
    if earned:
        changes["lifetime_earned"] = _WALLETS.c.lifetime_earned + statement.excluded.lifetime_earned
    insert_statement: Insert = statement.on_conflict_do_update(index_elements=["member_key"], set_=changes)
    return insert_statement


def _upsert_wallet(
    session: Session, member_key: str, now: datetime, *, available: int = 0, pending: int = 0, earned: int = 0
) -> None:
    statement = _upsert_statement(session.get_bind().dialect.name, bool(available), bool(pending), bool(earned))
    params = {"p_member": member_key, "p_available": available, "p_pending": pending, "p_earned": earned, "p_now": now}
    session.execute(statement, params)


def lock_wallets(session: Session, member_keys: Iterable[str], now: datetime) -> None:
    """Create (if new) and lock each member's wallet, in key order."""
    for member_key in sorted(set(member_keys)):
        _upsert_wallet(session, member_key, now)


def lock_and_credit(
    session: Session, member_key: str, now: datetime, *, available: int = 0, pending: int = 0, earned: int = 0
) -> None:
    """Lock one member's wallet (creating it if new) and add non-negative deltas, in one statement.

    For a write that only credits the member and reads nothing under the lock (an
    earn, a positive adjustment); the wallet is locked as by :func:`lock_wallets`.
    """
    if min(available, pending, earned) < 0:
        raise ValueError("lock_and_credit only adds points")
    _upsert_wallet(session, member_key, now, available=available, pending=pending, earned=earned)


_MOVE_WALLET = (
    update(_WALLETS)
    .where(_WALLETS.c.member_key == bindparam("p_member"))
    .values(
        available=_WALLETS.c.available + bindparam("p_available"),
        pending=_WALLETS.c.pending + bindparam("p_pending"),
        lifetime_earned=_WALLETS.c.lifetime_earned + bindparam("p_earned"),
        lifetime_redeemed=_WALLETS.c.lifetime_redeemed + bindparam("p_redeemed"),
    )
)


def move_wallet(
    session: Session, member_key: str, *, available: int = 0, pending: int = 0, earned: int = 0, redeemed: int = 0
) -> None:
    """Apply deltas to a locked wallet; the CHECK constraints refuse a negative balance."""
    if not (available or pending or earned or redeemed):
        return
    params = {"p_member": member_key, "p_available": available, "p_pending": pending}
    try:
        session.execute(_MOVE_WALLET, {**params, "p_earned": earned, "p_redeemed": redeemed})
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
) -> LedgerTransactionRead:
    """Record a transaction and its legs (the legs must sum to zero); returns it as read back, without reading."""
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
        if legs and session.get_bind().dialect.name == "postgresql":
            params = {
                **row,
                "types": [t for t, _, _ in legs],
                "names": [n for _, n, _ in legs],
                "amounts": [a for _, _, a in legs],
            }
            txn_id = int(session.execute(_POST_PG, params).scalar_one())
            return _read(txn_id, row, legs)
        txn_id = session.execute(_INSERT_TRANSACTION, row).scalar_one()
    except IntegrityError as exc:  # the unique natural key: the caller's transaction must roll back
        raise ConflictError(f"reference {reference!r} was already used for {kind}") from exc
    if legs:
        session.execute(
            _INSERT_ENTRIES,
            [{"transaction_id": txn_id, "account_type": t, "account_name": n, "amount": a} for t, n, a in legs],
        )
    return _read(txn_id, row, legs)


def _read(txn_id: int, row: dict[str, Any], legs: Sequence[Leg]) -> LedgerTransactionRead:
    """What :func:`post` wrote, as :func:`read_transactions` would read it back."""
    return LedgerTransactionRead(
        id=txn_id,
        kind=row["kind"],
        member_key=row["member_key"],
        reference=row["reference"],
        points=row["points"],
        shortfall=row["shortfall"],
        actor=row["actor"],
        memo=row["memo"],
        created_at=aware(row["created_at"]),
        entries=[LedgerEntryRead(account=f"{t}:{n}", amount=a) for t, n, a in legs],
    )


_INSERT_TRANSACTION = insert(_TRANSACTIONS).returning(_TRANSACTIONS.c.id)
_INSERT_ENTRIES = insert(_ENTRIES)
_INSERT_LOT = insert(_LOTS)
_INSERT_ALLOCATIONS = insert(_ALLOCATIONS)

# PostgreSQL: the transaction and its entries (in leg order) in one statement.
_POST_PG = text(
    "WITH txn AS ("
    " INSERT INTO ledger_transactions"
    " (kind, member_key, reference, natural_key, points, shortfall, actor, memo, created_at)"
    " VALUES (:kind, :member_key, :reference, :natural_key, :points, :shortfall, :actor, :memo, :created_at)"
    " RETURNING id),"
    " legs AS ("
    " INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)"
    " SELECT txn.id, leg.account_type, leg.account_name, leg.amount FROM txn,"
    " unnest(CAST(:types AS varchar[]), CAST(:names AS varchar[]), CAST(:amounts AS bigint[]))"
    " WITH ORDINALITY AS leg(account_type, account_name, amount, n)"
    " ORDER BY leg.n)"
    " SELECT id FROM txn"
)


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
) -> None:
    """Insert a lot holding all its points."""
    session.execute(
        _INSERT_LOT,
        {
            "member_key": member_key,
            "transaction_id": txn_id,
            "source": source,
            "points": points,
            "remaining": points,
            "status": status,
            "earned_at": now,
            "pending_until": pending_until,
            "expires_at": expires_at,
        },
    )


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


_LIVE_LOTS = (
    select(
        _LOTS.c.id,
        _LOTS.c.status,
        _LOTS.c.remaining,
        _LOTS.c.points,
        _LOTS.c.source,
        _LOTS.c.pending_until,
        _LOTS.c.expires_at,
    )
    .where(_LOTS.c.member_key == bindparam("p_member"), _LOTS.c.status.in_(("pending", "active")))
    .order_by(_LOTS.c.expires_at.asc().nulls_last(), _LOTS.c.id)
)


def live_lots(session: Session, member_key: str) -> list[LiveLot]:
    """The member's pending and active lots, earliest-expiring first (no expiry last), then oldest (lowest id)."""
    rows = session.execute(_LIVE_LOTS, {"p_member": member_key})
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


LotChange = tuple[int, int, str, str | None]  # (lot id, points taken, status when emptied, else status)

_LEFT = _LOTS.c.remaining - bindparam("p_taken")
_CHANGE_LOT = (
    update(_LOTS)
    .where(_LOTS.c.id == bindparam("p_lot"))
    .values(
        remaining=_LEFT,
        status=case(
            (_LEFT == 0, bindparam("p_emptied", type_=String)),
            else_=func.coalesce(bindparam("p_status", type_=String), _LOTS.c.status),
        ),
    )
)


def change_lots(session: Session, txn_id: int, changes: Sequence[LotChange]) -> None:
    """Apply lot changes in order, as one batch, and record the allocations of the non-zero ones.

    Each change takes ``taken`` points from a lot (negative gives back); the lot
    becomes ``emptied`` when nothing remains, else ``status`` (None keeps its own).
    """
    if not changes:
        return
    session.execute(
        _CHANGE_LOT,
        [
            {"p_lot": lot, "p_taken": taken, "p_emptied": emptied, "p_status": status}
            for lot, taken, emptied, status in changes
        ],
    )
    allocations = [{"transaction_id": txn_id, "lot_id": lot, "points": taken} for lot, taken, _, _ in changes if taken]
    if allocations:
        session.execute(_INSERT_ALLOCATIONS, allocations)


def change_lot(
    session: Session, txn_id: int, lot_id: int, taken: int, *, emptied: str, status: str | None = None
) -> None:
    """Take ``taken`` points from a lot (negative gives back), record the allocation.

    The lot becomes ``emptied`` when nothing remains, else ``status`` (or keeps its own).
    """
    change_lots(session, txn_id, [(lot_id, taken, emptied, status)])


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
