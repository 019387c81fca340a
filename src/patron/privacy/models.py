"""Operational tables of data-subject requests and of erased source identities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = ["KINDS", "STATUSES", "ErasureTombstone", "PrivacyRequest"]

KINDS = ("export", "correction", "restriction", "erasure")
STATUSES = ("received", "in_progress", "completed", "rejected")


def _within(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PrivacyRequest(Base):
    """A member's request to see, correct, restrict or erase their data, and how it was handled.

    ``due_at`` is ``received_at`` plus the deadline (30 days). ``note`` and
    ``outcome`` never hold personal values: the outcome counts what was done
    and names the fields that changed.
    """

    __tablename__ = "privacy_requests"
    __table_args__ = (
        CheckConstraint(_within("kind", KINDS), name="kind"),
        CheckConstraint(_within("status", STATUSES), name="status"),
        CheckConstraint("due_at > received_at", name="due_at"),
        Index("ix_privacy_requests_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    member_key: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="received")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(String(1000), default="")
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ErasureTombstone(Base):
    """A source customer id that was erased, as a keyed hash: a later import of it can be recognised.

    ``digest`` is HMAC-SHA256 of ``source`` and the source id under a key
    derived from the blind-index system key (wrapped by the master key, so
    a rotation keeps every tombstone recognisable); the id itself is not kept.
    """

    __tablename__ = "erasure_tombstones"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(Integer)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
