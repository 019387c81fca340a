"""Pydantic in/out types of consent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from patron.consent.rules import BlockReason, ConsentSource, ConsentState, Purpose

__all__ = [
    "ConsentEventRead",
    "ConsentHistoryPage",
    "ConsentRead",
    "ConsentUpdate",
    "MemberConsentsRead",
    "RestrictionRead",
]

ApiSource = Literal["api", "checkout", "import"]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class ConsentUpdate(BaseModel):
    """A consent statement to record for one purpose."""

    model_config = ConfigDict(extra="forbid")

    state: ConsentState
    source: ApiSource = Field(default="api", description="Where the member made the statement")
    evidence: str = Field(
        default="", max_length=512, description="A note without personal data: form version, checkout id"
    )
    at: Annotated[datetime, AfterValidator(_utc)] | None = Field(
        default=None, description="When the member made the statement (default now; never in the future)"
    )


class ConsentRead(BaseModel):
    """A purpose's current state for a member; ``asked`` is false while the default applies."""

    purpose: Purpose
    state: ConsentState
    allowed: bool = Field(description="Whether the purpose may use the member's data now (restriction included)")
    asked: bool
    source: str | None = None
    actor: str | None = None
    evidence: str = ""
    at: datetime | None = None


class RestrictionRead(BaseModel):
    """A restriction of processing: the member's data is kept but not used."""

    reason: Literal["request", "erasure"]
    request_id: int | None
    actor: str
    since: datetime


class MemberConsentsRead(BaseModel):
    """Every purpose's state for one member, and the restriction if one holds."""

    member_key: str
    consents: list[ConsentRead]
    restriction: RestrictionRead | None
    personalization_blocked: BlockReason | None = Field(
        default=None, description="Why recommendations for this member are not personalized, if they are not"
    )


class ConsentEventRead(BaseModel):
    """One recorded statement."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    purpose: Purpose
    state: ConsentState
    source: ConsentSource
    actor: str
    evidence: str
    at: datetime
    recorded_at: datetime


class ConsentHistoryPage(BaseModel):
    """A page of a member's statements, newest first."""

    items: list[ConsentEventRead]
    total: int
    page: int
    page_size: int
