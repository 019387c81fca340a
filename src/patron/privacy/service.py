"""Data-subject requests: filing, listing against the deadline, and carrying them out.

A request is ``received``, then optionally ``in_progress`` (someone is
verifying the member's identity), then ``completed`` by :func:`execute` or
``rejected`` with a reason. Completed and rejected requests are closed: doing
them again is a ConflictError. Each kind is carried out by its own module:
:mod:`patron.privacy.export`, :mod:`patron.privacy.correction`, a restriction
through :mod:`patron.consent.service`, :mod:`patron.privacy.erasure`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.consent import cache
from patron.consent.service import check_member_key, restrict
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.members.models import MemberIdentity
from patron.privacy.correction import correct_member
from patron.privacy.erasure import erase_member
from patron.privacy.export import export_counts, member_export
from patron.privacy.models import PrivacyRequest
from patron.privacy.requests import OPEN, complete, request_read, request_row
from patron.privacy.schemas import (
    DEADLINE_DAYS,
    DUE_SOON_DAYS,
    Correction,
    DueFilter,
    Execution,
    PrivacyRequestCreate,
    PrivacyRequestPage,
    PrivacyRequestRead,
)
from patron.privacy.text import check_note
from patron.runtime import Runtime

__all__ = [
    "MAX_PAGE_SIZE",
    "create_request",
    "execute",
    "get_request",
    "list_requests",
    "member_requests",
    "reject_request",
    "start_request",
]

MAX_PAGE_SIZE = 200


def create_request(store: OperationalStore, body: PrivacyRequestCreate, actor: str) -> PrivacyRequestRead:
    """File a request of a known member; its deadline is ``DEADLINE_DAYS`` after it was received."""
    check_member_key(body.member_key)
    note = check_note(body.note, "note", 1000)
    now = utcnow()
    received = now if body.received_at is None else body.received_at
    if received > now + timedelta(minutes=5):
        raise ValidationError("a request cannot have been received in the future", field="received_at")
    with store.session() as session:
        if session.get(MemberIdentity, body.member_key) is None:
            raise NotFoundError(f"member {body.member_key} is not known (never imported, or erased)")
        row = PrivacyRequest(
            kind=body.kind,
            member_key=body.member_key,
            status="received",
            received_at=received,
            due_at=received + timedelta(days=DEADLINE_DAYS),
            note=note,
            outcome={},
            created_by=actor[:128],
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return request_read(row, now)


def get_request(store: OperationalStore, request_id: int) -> PrivacyRequestRead:
    """One request."""
    with store.session() as session:
        return request_read(request_row(session, request_id))


def list_requests(
    store: OperationalStore,
    *,
    due: DueFilter | None = None,
    status: str | None = None,
    kind: str | None = None,
    member_key: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> PrivacyRequestPage:
    """Requests, filtered; with ``due`` the most urgent first, else the newest first."""
    if page < 1:
        raise ValidationError("page starts at 1", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be 1 to {MAX_PAGE_SIZE}", field="page_size")
    now = utcnow()
    where: list[Any] = []
    if due is not None:
        where.append(PrivacyRequest.status.in_(OPEN))
        if due == "overdue":
            where.append(PrivacyRequest.due_at < now)
        elif due == "due_soon":
            where += [PrivacyRequest.due_at >= now, PrivacyRequest.due_at < now + timedelta(days=DUE_SOON_DAYS)]
    if status is not None:
        where.append(PrivacyRequest.status == status)
    if kind is not None:
        where.append(PrivacyRequest.kind == kind)
    if member_key is not None:
        where.append(PrivacyRequest.member_key == check_member_key(member_key))
    order = [PrivacyRequest.due_at, PrivacyRequest.id] if due else [PrivacyRequest.id.desc()]
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(PrivacyRequest).where(*where)) or 0
        rows = session.scalars(
            select(PrivacyRequest).where(*where).order_by(*order).offset((page - 1) * page_size).limit(page_size)
        )
        items = [request_read(r, now) for r in rows]
    return PrivacyRequestPage(items=items, total=total, page=page, page_size=page_size)


def member_requests(store: OperationalStore, member_key: str) -> list[PrivacyRequestRead]:
    """Every request about one member, newest first."""
    return list_requests(store, member_key=member_key, page_size=MAX_PAGE_SIZE).items


def _open_row(session: Session, request_id: int) -> PrivacyRequest:
    row = request_row(session, request_id)
    if row.status not in OPEN:
        raise ConflictError(f"privacy request {request_id} is {row.status} already")
    return row


def start_request(store: OperationalStore, request_id: int, actor: str) -> PrivacyRequestRead:
    """Mark a received request as being handled by ``actor``."""
    with store.session() as session:
        row = _open_row(session, request_id)
        row.status, row.handled_by, row.updated_at = "in_progress", actor[:128], utcnow()
        session.flush()
        return request_read(row)


def reject_request(store: OperationalStore, request_id: int, reason: str, actor: str) -> PrivacyRequestRead:
    """Close a request without carrying it out; the reason is kept as its note."""
    reason = check_note(reason, "reason", 1000)
    if len(reason) < 3:
        raise ValidationError("a rejection needs a reason (at least 3 characters)", field="reason")
    with store.session() as session:
        row = _open_row(session, request_id)
        now = utcnow()
        row.status, row.handled_by, row.completed_at, row.updated_at = "rejected", actor[:128], now, now
        row.note = (f"{row.note}\n" if row.note else "") + f"rejected: {reason}"
        row.note = row.note[-1000:]
        session.flush()
        return request_read(row, now)


def execute(runtime: Runtime, request_id: int, actor: str, correction: Correction | None = None) -> Execution:
    """Carry out an open request by its kind and close it as completed.

    A correction needs ``correction`` (the new values); no other kind takes it.
    """
    store = runtime.store
    with store.session() as session:
        row = _open_row(session, request_id)
        kind, member_key = row.kind, row.member_key
    if correction is not None and kind != "correction":
        raise ValidationError(f"request {request_id} is an {kind} request: it takes no new values", field="correction")
    document: dict[str, Any] | None = None
    if kind == "export":
        document = member_export(runtime, member_key)
        with store.session() as session:
            done = request_read(complete(session, request_id, actor, {"sections": export_counts(document)}))
    elif kind == "correction":
        if correction is None or not correction.model_fields_set:
            raise ValidationError("a correction needs at least one field with its new value", field="correction")
        fields = correct_member(runtime, member_key, correction)
        with store.session() as session:
            done = request_read(complete(session, request_id, actor, {"fields": fields}))
    elif kind == "restriction":
        with store.session() as session:
            changed = restrict(session, member_key, reason="request", request_id=request_id, actor=actor)
            done = request_read(complete(session, request_id, actor, {"restricted": changed}))
        cache.invalidate(store)
    else:
        erase_member(runtime, request_id, actor)
        done = get_request(store, request_id)
    return Execution(request=done, export=document)
