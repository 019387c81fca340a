"""Who may not be personalized or analysed, kept in memory per process for hot paths.

Serving a member's recommendations must not pay a database round trip for
the consent check. Each process therefore keeps a snapshot of the exceptions
to the purposes granted by default (members who denied or withdrew
personalization or analytics) and of the restricted members, together with
the value of the ``consent_revision`` counter it was read at. Exceptions to a
default are few, so the snapshot stays small.

Freshness: a write through :mod:`patron.consent.service` (or an erasure)
drops this process's snapshot when it commits, so the writing process sees
the change at once. Other processes check the counter at most every
``CACHE_TTL`` seconds (one single-row read) and reload the snapshot only when
it has moved: a change made elsewhere is honoured within ``CACHE_TTL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.consent.models import ConsentRevision, MemberConsent, ProcessingRestriction
from patron.consent.rules import DEFAULT_GRANTED, BlockReason, Purpose
from patron.db.engine import OperationalStore

__all__ = ["CACHE_TTL", "block_reason", "bump", "invalidate"]

CACHE_TTL = 2.0


@dataclass(frozen=True)
class _Snapshot:
    revision: int
    refused: Mapping[str, Mapping[str, str]]  # purpose -> member key -> state (denied or withdrawn)
    restricted: frozenset[str]
    fresh_until: float


_lock = threading.Lock()
_snapshots: dict[str, _Snapshot] = {}


def _revision(session: Session) -> int:
    return int(session.scalar(select(ConsentRevision.revision).where(ConsentRevision.id == 1)) or 0)


def _load(store: OperationalStore, now: float) -> _Snapshot:
    with store.session() as session:
        # the counter first: the sets read after it are at least as new, never older
        revision = _revision(session)
        refused: dict[str, dict[str, str]] = {purpose: {} for purpose in DEFAULT_GRANTED}
        rows = session.execute(
            select(MemberConsent.member_key, MemberConsent.purpose, MemberConsent.state).where(
                MemberConsent.purpose.in_(sorted(DEFAULT_GRANTED)), MemberConsent.state != "granted"
            )
        )
        for member_key, purpose, state in rows:
            refused[purpose][member_key] = state
        restricted = frozenset(session.scalars(select(ProcessingRestriction.member_key)))
    return _Snapshot(revision, refused, restricted, now + CACHE_TTL)


def _snapshot(store: OperationalStore) -> _Snapshot:
    now = time.monotonic()
    current = _snapshots.get(store.url)
    if current is not None and now < current.fresh_until:
        return current
    with _lock:
        current = _snapshots.get(store.url)
        if current is not None and now < current.fresh_until:
            return current
        if current is not None:
            with store.session() as session:
                revision = _revision(session)
            if revision == current.revision:
                current = _Snapshot(current.revision, current.refused, current.restricted, now + CACHE_TTL)
                _snapshots[store.url] = current
                return current
        current = _load(store, now)
        _snapshots[store.url] = current
        return current


def block_reason(store: OperationalStore, member_key: str, purpose: Purpose) -> BlockReason | None:
    """Why ``purpose`` may not use the member's data, from the snapshot; None when it may.

    Only for the purposes granted by default (personalization, analytics).
    """
    if purpose not in DEFAULT_GRANTED:
        raise ValueError(f"{purpose} is not granted by default; ask the store (consent.service.allowed)")
    snapshot = _snapshot(store)
    if member_key in snapshot.restricted:
        return "processing_restricted"
    state = snapshot.refused[purpose].get(member_key)
    if state is None:
        return None
    return "consent_withdrawn" if state == "withdrawn" else "consent_denied"


def invalidate(store: OperationalStore) -> None:
    """Forget this process's snapshot of ``store`` (called after every committed write)."""
    with _lock:
        _snapshots.pop(store.url, None)


def bump(session: Session) -> None:
    """Move the change counter inside the caller's write transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ConsentRevision).values(id=1, revision=1)
    session.execute(
        statement.on_conflict_do_update(index_elements=["id"], set_={"revision": ConsentRevision.revision + 1})
    )
