"""Pydantic in/out types of data-subject requests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

__all__ = [
    "DEADLINE_DAYS",
    "DUE_SOON_DAYS",
    "Correction",
    "DueFilter",
    "Execution",
    "PrivacyRequestCreate",
    "PrivacyRequestPage",
    "PrivacyRequestRead",
    "Rejection",
    "RequestKind",
    "RequestStatus",
]

DEADLINE_DAYS = 30  # GDPR Art. 12(3): one month; PIPL Art. 50 asks for timely handling
DUE_SOON_DAYS = 7
RequestKind = Literal["export", "correction", "restriction", "erasure"]
RequestStatus = Literal["received", "in_progress", "completed", "rejected"]
DueFilter = Literal["open", "overdue", "due_soon"]
MemberKey = Annotated[str, StringConstraints(pattern=r"^m[0-9a-f]{16}$")]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class PrivacyRequestCreate(BaseModel):
    """A request a member made, to file."""

    model_config = ConfigDict(extra="forbid")

    kind: RequestKind
    member_key: MemberKey
    note: str = Field(default="", max_length=1000, description="How it arrived, what was checked; no personal data")
    received_at: Annotated[datetime, AfterValidator(_utc)] | None = Field(
        default=None, description="When the member made it (default now; the deadline runs from here)"
    )


class PrivacyRequestRead(BaseModel):
    """A request, its deadline and how it was handled; ``days_left`` is negative once overdue."""

    id: int
    kind: RequestKind
    member_key: str
    status: RequestStatus
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    handled_by: str | None
    note: str
    outcome: dict[str, Any]
    created_by: str
    open: bool
    days_left: int | None = Field(description="Whole days until the deadline while open (negative: overdue)")
    overdue: bool


class PrivacyRequestPage(BaseModel):
    items: list[PrivacyRequestRead]
    total: int
    page: int
    page_size: int


class Correction(BaseModel):
    """New values of personal fields; a field left out stays, a field set to null is cleared."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=32)] | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None
    birthday: date | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or "." not in value.split("@")[1] or " " in value):
            raise ValueError("an e-mail address is name@domain")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and (
            not all(ch.isdigit() or ch in "+-() " for ch in value) or sum(map(str.isdigit, value)) < 5
        ):
            raise ValueError("a phone number has digits, optionally '+', '-', '(', ')' and spaces")
        return value

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= datetime.now(UTC).date():
            raise ValueError("a birthday lies between 1900-01-01 and today")
        return value

    def changes(self) -> dict[str, str | None]:
        """The fields the correction sets, as vault values (a birthday as ISO text)."""
        out: dict[str, str | None] = {}
        for name in sorted(self.model_fields_set):
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, date) else value
        return out


class Rejection(BaseModel):
    """Why a request is refused (an identity that could not be verified, a manifestly unfounded request)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]


class Execution(BaseModel):
    """A request carried out: the request as it now stands and, for an export, the document."""

    request: PrivacyRequestRead
    export: dict[str, Any] | None = None
