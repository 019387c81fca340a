"""A request's outward form and its closing, shared by the service and the erasure."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError, NotFoundError
from patron.privacy.models import PrivacyRequest
from patron.privacy.schemas import PrivacyRequestRead

__all__ = ["OPEN", "complete", "request_read", "request_row"]

OPEN = ("received", "in_progress")


def _aware(moment: datetime) -> datetime:
    """The moment in UTC; SQLite hands back naive values, stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _days_left(due: datetime, now: datetime) -> int:
    """Days to the deadline, a started day counting whole (30 when just filed); negative once overdue."""
    remaining = (due - now).total_seconds() / 86_400
    return math.ceil(remaining) if remaining >= 0 else math.floor(remaining)


def request_read(row: PrivacyRequest, now: datetime | None = None) -> PrivacyRequestRead:
    """The outward form, with the days left and whether the deadline has passed."""
    now = now or utcnow()
    due = _aware(row.due_at)
    is_open = row.status in OPEN
    return PrivacyRequestRead(
        id=row.id,
        kind=row.kind,
        member_key=row.member_key,
        status=row.status,
        received_at=_aware(row.received_at),
        due_at=due,
        completed_at=None if row.completed_at is None else _aware(row.completed_at),
        handled_by=row.handled_by,
        note=row.note,
        outcome=dict(row.outcome or {}),
        created_by=row.created_by,
        open=is_open,
        days_left=_days_left(due, now) if is_open else None,
        overdue=is_open and due < now,
    )


def request_row(session: Session, request_id: int) -> PrivacyRequest:
    """The request row, or NotFoundError."""
    row = session.get(PrivacyRequest, request_id)
    if row is None:
        raise NotFoundError(f"privacy request {request_id} does not exist")
    return row


def complete(session: Session, request_id: int, actor: str, outcome: dict[str, Any]) -> PrivacyRequest:
    """Close an open request as completed inside the caller's transaction (a claim: once only)."""
    now = utcnow()
    claimed = session.execute(
        update(PrivacyRequest)
        .where(PrivacyRequest.id == request_id, PrivacyRequest.status.in_(OPEN))
        .values(status="completed", completed_at=now, handled_by=actor[:128], outcome=outcome, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"privacy request {request_id} was closed meanwhile")
    row = request_row(session, request_id)
    session.refresh(row)
    return row
