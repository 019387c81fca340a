"""Pydantic in/out types of the points ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "MEMBER_KEY_PATTERN",
    "MAX_POINTS",
    "AdjustRequest",
    "BalanceRead",
    "EarnRequest",
    "JobResult",
    "LedgerEntryRead",
    "LedgerPage",
    "LedgerTransactionRead",
    "LotRead",
    "RedeemRequest",
    "ReverseRequest",
    "ReverseResult",
]

MEMBER_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_POINTS = 1_000_000_000

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Points = Annotated[int, Field(gt=0, le=MAX_POINTS)]
TransactionKind = Literal["earn", "redeem", "reverse", "adjust", "activate", "expire"]
LotStatus = Literal["pending", "active", "cancelled", "expired", "consumed"]


class LedgerEntryRead(BaseModel):
    """One leg: ``amount`` credited to ``account`` (``type:name``)."""

    model_config = ConfigDict(frozen=True)

    account: str
    amount: int


class LedgerTransactionRead(BaseModel):
    """A balanced transaction and its entries."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: TransactionKind
    member_key: str
    reference: str | None
    points: int
    shortfall: int = 0
    actor: str
    memo: str
    created_at: datetime
    entries: list[LedgerEntryRead]


class LedgerPage(BaseModel):
    """A page of a member's transactions, newest first."""

    items: list[LedgerTransactionRead]
    total: int
    page: int
    page_size: int


class BalanceRead(BaseModel):
    """A member's balances; ``expiring_soon`` is what expires within ``expiring_days``."""

    member_key: str
    available: int
    pending: int
    lifetime_earned: int
    lifetime_redeemed: int
    expiring_soon: int
    expiring_days: int = 30


class LotRead(BaseModel):
    """Points credited together, with what remains of them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    points: int
    remaining: int
    status: LotStatus
    earned_at: datetime
    pending_until: datetime | None
    expires_at: datetime | None


class EarnRequest(BaseModel):
    """Credit points for a reference (an order, an event); pending until ``pending_until`` if given."""

    model_config = ConfigDict(extra="forbid")

    points: Points
    source: Name = "manual"
    reference: Reference
    expires_at: datetime | None = None
    pending_until: datetime | None = None
    memo: Annotated[str, StringConstraints(max_length=512)] = ""


class RedeemRequest(BaseModel):
    """Spend available points for a reference (an order, a reward); oldest-expiring lots first."""

    model_config = ConfigDict(extra="forbid")

    points: Points
    sink: Name = "redemption"
    reference: Reference
    memo: Annotated[str, StringConstraints(max_length=512)] = ""


class AdjustRequest(BaseModel):
    """A manual correction: positive credits, negative debits; the reason is required."""

    model_config = ConfigDict(extra="forbid")

    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=512)]


class ReverseRequest(BaseModel):
    """Reverse every not yet reversed transaction recorded under ``reference`` (a return)."""

    model_config = ConfigDict(extra="forbid")

    reference: Reference
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=512)]


class ReverseResult(BaseModel):
    """The reversal made, or null when nothing under the reference was left to reverse."""

    reversal: LedgerTransactionRead | None


class JobResult(BaseModel):
    """What a ledger job did."""

    job: Literal["activate", "expire"]
    as_of: datetime
    lots: int
