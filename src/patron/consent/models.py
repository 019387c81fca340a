"""Operational tables of consent: current states, their history, restrictions, the change counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.consent.rules import PURPOSES, STATES
from patron.db.base import Base, utcnow

__all__ = ["ConsentEvent", "ConsentRevision", "MemberConsent", "ProcessingRestriction"]

RESTRICTION_REASONS = ("request", "erasure")


def _within(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MemberConsent(Base):
    """A member's current state for one purpose: the latest statement by ``at`` in the history.

    No row means the member was never asked: the purpose's default applies
    (see :mod:`patron.consent.rules`).
    """

    __tablename__ = "member_consents"
    __table_args__ = (
        CheckConstraint(_within("purpose", PURPOSES), name="purpose"),
        CheckConstraint(_within("state", STATES), name="state"),
    )

    member_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    evidence: Mapped[str] = mapped_column(String(512), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[int] = mapped_column(BigInteger)


class ConsentEvent(Base):
    """One consent statement as recorded; append-only (triggers reject UPDATE and DELETE).

    ``at`` is when the member made the statement (an import may bring older
    ones), ``recorded_at`` when Patron learnt it. ``evidence`` is a short note
    without personal data (a form version, a checkout id).
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(_within("purpose", PURPOSES), name="purpose"),
        CheckConstraint(_within("state", STATES), name="state"),
        Index("ix_consent_events_member_key_id", "member_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    evidence: Mapped[str] = mapped_column(String(512), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProcessingRestriction(Base):
    """A member whose data may be stored but not processed (a restriction request, or an erasure)."""

    __tablename__ = "processing_restrictions"
    __table_args__ = (CheckConstraint(_within("reason", RESTRICTION_REASONS), name="reason"),)

    member_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsentRevision(Base):
    """A counter every consent or restriction write bumps (one row, id 1, created by the first write).

    Serving processes cache who may not be personalized and re-read only when
    this number has moved (see :mod:`patron.consent.cache`).
    """

    __tablename__ = "consent_revision"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
