"""Tables of the points ledger: transactions, entries, wallets, lots, allocations, reversals.

The ledger proper (``ledger_transactions``, ``ledger_entries``) is append-only:
triggers created by the migration reject UPDATE and DELETE on PostgreSQL and
SQLite. Wallets and lots are derived state kept in the same transaction as the
entries; their CHECK constraints make a negative balance impossible.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = [
    "ACCOUNT_TYPES",
    "LOT_STATUSES",
    "TRANSACTION_KINDS",
    "LedgerEntry",
    "LedgerReversal",
    "LedgerTransaction",
    "LotAllocation",
    "PointsLot",
    "PointsWallet",
]

TRANSACTION_KINDS = ("earn", "redeem", "reverse", "adjust", "activate", "expire")
ACCOUNT_TYPES = ("available", "pending", "source", "sink", "expiry", "adjustment")
LOT_STATUSES = ("pending", "active", "cancelled", "expired", "consumed")
PENDING_LOT = "status = 'pending'"
ACTIVE_LOT = "status = 'active'"


def _within(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerTransaction(Base):
    """One balanced movement of points; its entries sum to zero.

    ``natural_key`` makes a business reference single-use per kind
    (``earn:<reference>``, ``redeem:<reference>``, ``reverse:<reference>``);
    it is null for adjustments and jobs. ``shortfall`` is what a reversal
    could not claw back because the member had already spent it.
    """

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(_within("kind", TRANSACTION_KINDS), name="kind"),
        CheckConstraint("points >= 0", name="points"),
        CheckConstraint("shortfall >= 0", name="shortfall"),
        Index("ix_ledger_transactions_member_key_id", "member_key", "id"),
        Index("ix_ledger_transactions_reference", "reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    member_key: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(128))
    natural_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    points: Mapped[int] = mapped_column(BigInteger)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    actor: Mapped[str] = mapped_column(String(128))
    memo: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerEntry(Base):
    """One leg of a transaction: ``amount`` (non-zero) credited to an account.

    Accounts are ``(account_type, account_name)``: a member's ``available`` and
    ``pending`` wallets (named by member key), an earning ``source``, a
    redemption ``sink``, ``expiry`` and ``adjustment``. Points flow out of a
    source (negative balance) into wallets and on to sinks and expiry.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_within("account_type", ACCOUNT_TYPES), name="account_type"),
        CheckConstraint("amount <> 0", name="amount"),
        Index("ix_ledger_entries_account", "account_name", "account_type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_name: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)


class PointsWallet(Base):
    """A member's balances, derived from the entries and updated with them; never negative."""

    __tablename__ = "points_wallets"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available"),
        CheckConstraint("pending >= 0", name="pending"),
        CheckConstraint("lifetime_earned >= 0", name="lifetime_earned"),
        CheckConstraint("lifetime_redeemed >= 0", name="lifetime_redeemed"),
    )

    member_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PointsLot(Base):
    """Points credited together (an earn or a positive adjustment), spent and expired as a unit.

    ``remaining`` is what is still in the wallet; the member's available
    balance is the sum of ``remaining`` over active lots, the pending balance
    over pending lots.
    """

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint(_within("status", LOT_STATUSES), name="status"),
        CheckConstraint("points > 0", name="points"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining"),
        # a member's lots by status, in spending order (earliest expiry first, then oldest)
        Index("ix_points_lots_member_spend_order", "member_key", "status", "expires_at", "id"),
        # the jobs' sweeps: only the lots they can find are indexed (partial indexes), so consuming a lot or
        # earning one writes no entry for the sweep that cannot concern it
        Index(
            "ix_points_lots_pending_until",
            "pending_until",
            sqlite_where=text(PENDING_LOT),
            postgresql_where=text(PENDING_LOT),
        ),
        Index(
            "ix_points_lots_active_expires_at",
            "expires_at",
            sqlite_where=text(ACTIVE_LOT),
            postgresql_where=text(ACTIVE_LOT),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    earned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pending_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LotAllocation(Base):
    """Points a transaction took from (positive) or gave back to (negative) one lot."""

    __tablename__ = "lot_allocations"
    __table_args__ = (CheckConstraint("points <> 0", name="points"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class LedgerReversal(Base):
    """Which transaction reversed which; a transaction is reversed at most once (primary key)."""

    __tablename__ = "ledger_reversals"

    original_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), primary_key=True)
    reversal_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
