"""Recording consents and restrictions, and answering whether a purpose may use a member's data.

Every write is one transaction: the statement is appended to the history,
the current state follows it when it is the newest statement, and the change
counter of :mod:`patron.consent.cache` moves; this process's cache is dropped
after the commit. A statement equal to the current one (same state, source
and evidence) is not recorded again, so a retried write changes nothing.

Where data is used, code asks :func:`allowed` (one member) or
:func:`allowed_members` (a batch, for campaign targeting). The purposes granted
by default are answered from the per-process cache, the others from the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.consent import cache
from patron.consent.models import ConsentEvent, MemberConsent, ProcessingRestriction
from patron.consent.rules import (
    DEFAULT_GRANTED,
    DEFAULTS,
    PURPOSES,
    BlockReason,
    ConsentSource,
    ConsentState,
    Purpose,
)
from patron.consent.schemas import (
    ConsentEventRead,
    ConsentHistoryPage,
    ConsentRead,
    MemberConsentsRead,
    RestrictionRead,
)
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.members.models import MemberIdentity
from patron.privacy.text import check_note

__all__ = [
    "MAX_PAGE_SIZE",
    "allowed",
    "allowed_members",
    "check_member_key",
    "consent_history",
    "lift_restriction",
    "member_consents",
    "personalization_block",
    "restrict",
    "restriction_of",
    "set_consent",
]

MAX_PAGE_SIZE = 500
_MEMBER_KEY = re.compile(r"^m[0-9a-f]{16}$")


def check_member_key(member_key: str) -> str:
    """The key itself, or a ValidationError naming ``member_key``."""
    if not isinstance(member_key, str) or not _MEMBER_KEY.match(member_key):
        raise ValidationError("a member key is 'm' and 16 lower-case hex digits", field="member_key")
    return member_key


def _check_purpose(purpose: str) -> Purpose:
    if purpose not in PURPOSES:
        raise ValidationError(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}", field="purpose")
    return purpose


def _aware(moment: datetime) -> datetime:
    """The moment in UTC; SQLite hands back naive values, stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _require_member(session: Session, member_key: str) -> None:
    if session.get(MemberIdentity, member_key) is None:
        raise NotFoundError(f"member {member_key} is not known (never imported, or erased)")


def _read(purpose: Purpose, row: MemberConsent | None, restricted: bool) -> ConsentRead:
    if row is None:
        state = DEFAULTS[purpose]
        return ConsentRead(purpose=purpose, state=state, allowed=state == "granted" and not restricted, asked=False)
    return ConsentRead(
        purpose=purpose,
        state=row.state,
        allowed=row.state == "granted" and not restricted,
        asked=True,
        source=row.source,
        actor=row.actor,
        evidence=row.evidence,
        at=_aware(row.at),
    )


def _restriction(row: ProcessingRestriction | None) -> RestrictionRead | None:
    if row is None:
        return None
    return RestrictionRead(
        reason=row.reason,
        request_id=row.request_id,
        actor=row.actor,
        since=_aware(row.since),
    )


def member_consents(store: OperationalStore, member_key: str) -> MemberConsentsRead:
    """Every purpose's state for a member (defaults where never asked) and any restriction."""
    check_member_key(member_key)
    with store.session() as session:
        rows = {
            r.purpose: r for r in session.scalars(select(MemberConsent).where(MemberConsent.member_key == member_key))
        }
        restriction = session.get(ProcessingRestriction, member_key)
        if not rows and restriction is None:
            _require_member(session, member_key)
        consents = [_read(purpose, rows.get(purpose), restriction is not None) for purpose in PURPOSES]
        held = _restriction(restriction)
    personal = next(c for c in consents if c.purpose == "personalization")
    blocked: BlockReason | None = None
    if held is not None:
        blocked = "processing_restricted"
    elif not personal.allowed:
        blocked = "consent_withdrawn" if personal.state == "withdrawn" else "consent_denied"
    return MemberConsentsRead(
        member_key=member_key, consents=consents, restriction=held, personalization_blocked=blocked
    )


def _effective(row: MemberConsent | None, purpose: Purpose) -> str:
    return DEFAULTS[purpose] if row is None else row.state


def set_consent(
    store: OperationalStore,
    member_key: str,
    purpose: str,
    state: ConsentState,
    *,
    source: ConsentSource,
    actor: str,
    evidence: str = "",
    at: datetime | None = None,
) -> ConsentRead:
    """Record a statement and return the purpose's current state.

    ``withdrawn`` needs a purpose that is granted now (explicitly or by
    default); otherwise the statement is a ConflictError. A statement older
    than the current one joins the history without changing the state.
    """
    check_member_key(member_key)
    checked = _check_purpose(purpose)
    if state not in ("granted", "denied", "withdrawn"):
        raise ValidationError("state must be granted, denied or withdrawn", field="state")
    evidence = check_note(evidence, "evidence", 512)
    now = utcnow()
    moment = now if at is None else _aware(at)
    if moment > now:
        raise ValidationError("a consent statement cannot be dated in the future", field="at")
    try:
        with store.session() as session:
            result = _record(session, member_key, checked, state, source, actor[:128], evidence, moment, now)
    except IntegrityError as exc:  # a first statement for the purpose written meanwhile by another writer
        raise ConflictError(f"the consents of {member_key} changed meanwhile; try again") from exc
    cache.invalidate(store)
    return result


def _record(
    session: Session,
    member_key: str,
    purpose: Purpose,
    state: ConsentState,
    source: ConsentSource,
    actor: str,
    evidence: str,
    moment: datetime,
    now: datetime,
) -> ConsentRead:
    _require_member(session, member_key)
    current = session.get(MemberConsent, (member_key, purpose), with_for_update=True)
    if state == "withdrawn" and _effective(current, purpose) != "granted":
        raise ConflictError(f"{purpose} is {_effective(current, purpose)} for {member_key}: nothing to withdraw")
    restricted = session.get(ProcessingRestriction, member_key) is not None
    if current is not None and (current.state, current.source, current.evidence) == (state, source, evidence):
        return _read(purpose, current, restricted)
    event = ConsentEvent(
        member_key=member_key,
        purpose=purpose,
        state=state,
        source=source,
        actor=actor,
        evidence=evidence,
        at=moment,
        recorded_at=now,
    )
    session.add(event)
    session.flush()
    if current is None:
        current = MemberConsent(member_key=member_key, purpose=purpose)
        session.add(current)
    if current.at is None or _aware(current.at) <= moment:  # an older statement joins the history only
        current.state, current.source, current.actor = state, source, actor
        current.evidence, current.at, current.event_id = evidence, moment, event.id
    session.flush()
    cache.bump(session)
    return _read(purpose, current, restricted)


def consent_history(
    store: OperationalStore, member_key: str, purpose: str | None = None, page: int = 1, page_size: int = 50
) -> ConsentHistoryPage:
    """A member's recorded statements (of one purpose, if given), newest first."""
    check_member_key(member_key)
    if purpose is not None:
        _check_purpose(purpose)
    if page < 1:
        raise ValidationError("page starts at 1", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be 1 to {MAX_PAGE_SIZE}", field="page_size")
    where = [ConsentEvent.member_key == member_key]
    if purpose is not None:
        where.append(ConsentEvent.purpose == purpose)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(ConsentEvent).where(*where)) or 0
        rows = session.scalars(
            select(ConsentEvent)
            .where(*where)
            .order_by(ConsentEvent.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        items = [
            ConsentEventRead.model_validate(r).model_copy(
                update={"at": _aware(r.at), "recorded_at": _aware(r.recorded_at)}
            )
            for r in rows
        ]
    return ConsentHistoryPage(items=items, total=total, page=page, page_size=page_size)


def personalization_block(store: OperationalStore, member_key: str) -> BlockReason | None:
    """Why the member's data may not personalize what they are shown; None when it may (cached, no I/O)."""
    return cache.block_reason(store, member_key, "personalization")


def allowed(store: OperationalStore, member_key: str, purpose: str) -> bool:
    """Whether ``purpose`` may use the member's data now.

    Personalization and analytics (granted by default) are answered from the
    per-process cache, fresh within ``cache.CACHE_TTL`` seconds of a change in
    another process; the marketing channels (denied by default) from the store.
    """
    checked = _check_purpose(purpose)
    if checked in DEFAULT_GRANTED:
        return cache.block_reason(store, member_key, checked) is None
    return member_key in allowed_members(store, checked, [member_key])


def allowed_members(store: OperationalStore, purpose: str, member_keys: Iterable[str]) -> set[str]:
    """The members among ``member_keys`` whom ``purpose`` may reach now (read from the store)."""
    checked = _check_purpose(purpose)
    keys = sorted(set(member_keys))
    found: set[str] = set()
    with store.session() as session:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            restricted = set(
                session.scalars(
                    select(ProcessingRestriction.member_key).where(ProcessingRestriction.member_key.in_(chunk))
                )
            )
            rows = session.execute(
                select(MemberConsent.member_key, MemberConsent.state).where(
                    MemberConsent.purpose == checked, MemberConsent.member_key.in_(chunk)
                )
            )
            states = {key: state for key, state in rows}
            default = DEFAULTS[checked]
            found |= {k for k in chunk if k not in restricted and states.get(k, default) == "granted"}
    return found


def restriction_of(store: OperationalStore, member_key: str) -> RestrictionRead | None:
    """The member's restriction of processing, if one holds."""
    check_member_key(member_key)
    with store.session() as session:
        return _restriction(session.get(ProcessingRestriction, member_key))


def restrict(session: Session, member_key: str, *, reason: str, request_id: int | None, actor: str) -> bool:
    """Stop all processing of the member's data inside the caller's transaction; False if already restricted.

    An erasure's restriction replaces a request's. The caller must call
    ``cache.invalidate`` after committing.
    """
    current = session.get(ProcessingRestriction, member_key, with_for_update=True)
    if current is not None and (current.reason == reason or current.reason == "erasure"):
        return False
    if current is None:
        current = ProcessingRestriction(member_key=member_key)
        session.add(current)
    current.reason, current.request_id, current.actor, current.since = reason, request_id, actor[:128], utcnow()
    cache.bump(session)
    return True


def lift_restriction(store: OperationalStore, member_key: str) -> RestrictionRead:
    """End a restriction a request put in place; an erased member's restriction stays for good."""
    check_member_key(member_key)
    with store.session() as session:
        current = session.get(ProcessingRestriction, member_key, with_for_update=True)
        if current is None:
            raise NotFoundError(f"member {member_key} is not restricted")
        if current.reason == "erasure":
            raise ConflictError(f"member {member_key} was erased: the restriction cannot be lifted")
        lifted = _restriction(current)
        session.execute(delete(ProcessingRestriction).where(ProcessingRestriction.member_key == member_key))
        cache.bump(session)
    cache.invalidate(store)
    assert lifted is not None
    return lifted
