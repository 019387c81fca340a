"""Reversing what was recorded under a reference (a return or a cancelled order).

One reversal transaction undoes every earn and redemption recorded under the
reference that was not reversed yet (``ledger_reversals`` makes a second
reversal of one transaction impossible). Redemptions are refunded first, into
the very lots they spent (a lot whose earn was reversed meanwhile gets a new lot
in its place; points whose lot has expired meanwhile go straight to expiry).
Then earns are undone: a pending lot is cancelled; an active lot's points are
clawed back, first from the lot itself, then from the member's other lots,
earliest-expiring first. Points of the lot that had already expired are not
clawed back again. The wallet never goes negative: what the member has already
spent and cannot cover is recorded as the reversal's ``shortfall``.

:func:`python_reverse` is the reference implementation (used on SQLite); on
PostgreSQL :func:`patron.loyalty.ledger.reverse` calls the database function
``patron_ledger_reverse`` (migration ``0013``), which writes exactly the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import BindParameter, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.loyalty.ledger_jobs import settle
from patron.loyalty.ledger_models import (
    LedgerEntry,
    LedgerReversal,
    LedgerTransaction,
    LotAllocation,
    PointsLot,
)
from patron.loyalty.ledger_posting import (
    Leg,
    aware,
    change_lots,
    lock_wallets,
    move_wallet,
    new_lot,
    post,
)
from patron.loyalty.ledger_schemas import LedgerTransactionRead

__all__ = ["python_reverse"]


@dataclass
class _Lot:
    id: int
    member_key: str
    source: str
    points: int
    remaining: int
    status: str
    expires_at: datetime | None
    txn_id: int = 0


@dataclass
class _Plan:
    """Everything the reversal will write, worked out before the transaction row exists."""

    legs: list[Leg] = field(default_factory=list)
    changes: list[tuple[int, int, str, str | None]] = field(default_factory=list)  # lot, taken, emptied, status
    new_lots: list[_Lot] = field(default_factory=list)
    wallets: dict[str, dict[str, int]] = field(default_factory=dict)
    moved: int = 0
    shortfall: int = 0

    def wallet(self, member_key: str, **deltas: int) -> None:
        current = self.wallets.setdefault(member_key, {})
        for name, value in deltas.items():
            current[name] = current.get(name, 0) + value


class _Original(NamedTuple):
    """An earn or a redemption to reverse."""

    id: int
    kind: str
    member_key: str


# Statements built once, run with parameters (see ledger_posting).
_TXNS = cast(Table, LedgerTransaction.__table__)
_LOTS = cast(Table, PointsLot.__table__)
_ALLOCS = cast(Table, LotAllocation.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_OPEN_ORIGINALS = (
    select(_TXNS.c.id, _TXNS.c.kind, _TXNS.c.member_key)
    .where(
        _TXNS.c.reference == bindparam("p_reference"),
        _TXNS.c.kind.in_(("earn", "redeem")),
        _TXNS.c.id.not_in(select(cast(Table, LedgerReversal.__table__).c.original_id)),
    )
    .order_by(_TXNS.c.id)
)
_INSERT_REVERSALS = insert(cast(Table, LedgerReversal.__table__))
_ORIGINAL_IDS: BindParameter[int] = bindparam("p_originals", expanding=True)
_LOAD_LOTS = select(
    _LOTS.c.id,
    _LOTS.c.member_key,
    _LOTS.c.source,
    _LOTS.c.points,
    _LOTS.c.remaining,
    _LOTS.c.status,
    _LOTS.c.expires_at,
    _LOTS.c.transaction_id,
).where(
    (_LOTS.c.member_key.in_(bindparam("p_members", expanding=True)) & _LOTS.c.status.in_(("pending", "active")))
    | _LOTS.c.id.in_(select(_ALLOCS.c.lot_id).where(_ALLOCS.c.transaction_id.in_(_ORIGINAL_IDS)))
    | _LOTS.c.transaction_id.in_(_ORIGINAL_IDS)
)
_SINK = select(_ENTRIES.c.account_name).where(
    _ENTRIES.c.transaction_id == bindparam("p_txn"), _ENTRIES.c.account_type == "sink"
)
_ALLOCATED = (
    select(_ALLOCS.c.lot_id, _ALLOCS.c.points)
    .where(_ALLOCS.c.transaction_id == bindparam("p_txn"))
    .order_by(_ALLOCS.c.id)
)
_EXPIRED = (
    select(func.coalesce(func.sum(_ALLOCS.c.points), 0))
    .join(_TXNS, _TXNS.c.id == _ALLOCS.c.transaction_id)
    .where(_ALLOCS.c.lot_id == bindparam("p_lot"), _TXNS.c.kind == "expire")
)


def _load_lots(session: Session, members: set[str], originals: list[int]) -> dict[int, _Lot]:
    """The members' live lots, the lots the originals spent and the originals' own lots."""
    rows = session.execute(_LOAD_LOTS, {"p_members": sorted(members), "p_originals": originals})
    return {
        r.id: _Lot(
            r.id,
            r.member_key,
            r.source,
            r.points,
            r.remaining,
            r.status,
            None if r.expires_at is None else aware(r.expires_at),
            r.transaction_id,
        )
        for r in rows
    }


def _refund(session: Session, plan: _Plan, lots: dict[int, _Lot], original: _Original, now: datetime) -> None:
    sink = session.scalar(_SINK, {"p_txn": original.id})
    member = original.member_key
    for lot_id, taken in session.execute(_ALLOCATED, {"p_txn": original.id}):
        lot = lots[lot_id]
        plan.moved += taken
        if lot.expires_at is not None and lot.expires_at <= now:
            plan.legs += [("sink", str(sink), -taken), ("expiry", "expiry", taken)]
            plan.wallet(member, redeemed=-taken)
            continue
        plan.legs += [("sink", str(sink), -taken), ("available", member, taken)]
        plan.wallet(member, available=taken, redeemed=-taken)
        if lot.status == "cancelled":
            plan.new_lots.append(_Lot(0, member, lot.source, taken, taken, "active", lot.expires_at))
        else:
            lot.remaining += taken
            lot.status = "active"
            plan.changes.append((lot.id, -taken, "active", "active"))


def _claw_back(session: Session, plan: _Plan, lots: dict[int, _Lot], original: _Original) -> None:
    member = original.member_key
    lot = next(x for x in lots.values() if x.txn_id == original.id)
    plan.wallet(member, earned=-lot.points)
    if lot.status == "pending":
        plan.moved += lot.remaining
        plan.legs += [("pending", member, -lot.remaining), ("source", lot.source, lot.remaining)]
        plan.wallet(member, pending=-lot.remaining)
        plan.changes.append((lot.id, lot.remaining, "cancelled", None))
        lot.remaining, lot.status = 0, "cancelled"
        return
    expired = session.scalar(_EXPIRED, {"p_lot": lot.id})
    need = lot.points - int(expired or 0)
    others = sorted(
        (x for x in lots.values() if x.member_key == member and x.status == "active" and x.id != lot.id),
        key=lambda x: (x.expires_at is None, x.expires_at or aware(datetime.max), x.id),
    )
    order = [lot, *others]
    taken_total = 0
    for source_lot in order:
        take = min(source_lot.remaining, need - taken_total)
        if source_lot is lot or take > 0:
            plan.changes.append((source_lot.id, take, "cancelled" if source_lot is lot else "consumed", None))
            source_lot.remaining -= take
        taken_total += take
    lot.status = "cancelled"
    plan.moved += taken_total
    plan.shortfall += need - taken_total
    plan.legs += [("available", member, -taken_total), ("source", lot.source, taken_total)]
    plan.wallet(member, available=-taken_total)


def _lock_originals(session: Session, reference: str, now: datetime) -> list[_Original]:
    """The open originals, read again after locking their members' wallets until no new member shows up."""
    locked: set[str] = set()
    while True:
        originals = [_Original(*row) for row in session.execute(_OPEN_ORIGINALS, {"p_reference": reference})]
        members = {t.member_key for t in originals}
        if members <= locked:
            return originals
        lock_wallets(session, members - locked, now)
        locked |= members


def python_reverse(session: Session, *, reference: str, actor: str, reason: str) -> LedgerTransactionRead | None:
    """Undo the earn and redemption recorded under ``reference``; None when nothing is left to undo.

    Redemptions are refunded first, then earns are cancelled (pending) or clawed
    back (active) without taking the wallet below zero; what could not be
    clawed back is the returned transaction's ``shortfall``.
    """
    now = utcnow()
    originals = _lock_originals(session, reference, now)
    if not originals:
        return None
    for member in sorted({t.member_key for t in originals}):
        settle(session, member, now)
    lots = _load_lots(session, {t.member_key for t in originals}, [t.id for t in originals])
    plan = _Plan()
    for original in sorted(originals, key=lambda t: (t.kind != "redeem", t.id)):
        if original.kind == "redeem":
            _refund(session, plan, lots, original, now)
        else:
            _claw_back(session, plan, lots, original)
    merged: dict[tuple[str, str], int] = {}
    for account_type, account_name, amount in plan.legs:
        merged[(account_type, account_name)] = merged.get((account_type, account_name), 0) + amount
    txn = post(
        session,
        kind="reverse",
        member_key=originals[0].member_key,
        points=plan.moved,
        legs=[(t, n, a) for (t, n), a in merged.items()],
        actor=actor,
        now=now,
        reference=reference,
        memo=reason,
        shortfall=plan.shortfall,
    )
    change_lots(session, txn.id, plan.changes)
    for extra in plan.new_lots:
        new_lot(
            session,
            txn_id=txn.id,
            member_key=extra.member_key,
            source=extra.source,
            points=extra.points,
            status="active",
            now=now,
            expires_at=extra.expires_at,
        )
    for member, deltas in sorted(plan.wallets.items()):
        move_wallet(session, member, **deltas)
    session.execute(_INSERT_REVERSALS, [{"original_id": t.id, "reversal_id": txn.id} for t in originals])
    return txn
