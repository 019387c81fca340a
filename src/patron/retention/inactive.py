"""Members inactive for the retention period: who they are, and anonymizing them as an erasure would.

A member is active since a moment if any of these is at or after it: an order, a clickstream event or the
sign-up in the warehouse; points earned or spent; an interaction reported to recommendation serving; the
creation of their key mapping. (A re-imported member file rewrites the vault entry: that is the shop's doing,
not the member's, so it does not count.) Clickstream counts only while it is kept: with the defaults, a member
whose last sign of life is a page view from more than two years ago is judged by their orders and sign-up.

Anonymizing shreds the vault entry and the data key (:func:`patron.members.vault_store.shred_member`) and
removes the key mapping, in one transaction per batch; their orders, points and events stay in place under a
key nobody can link to a person any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import ibis
from sqlalchemy import delete, select

from patron.db.engine import OperationalStore
from patron.errors import StoreError
from patron.loyalty.ledger_models import LedgerTransaction
from patron.members.models import MemberIdentity
from patron.members.vault_store import shred_member
from patron.progress import Progress
from patron.recs.registry_models import RecFeedback
from patron.warehouse.store import Warehouse

__all__ = ["anonymize", "inactive_members", "naive_utc"]

_BATCH = 500
_MEMBER_ACTIONS = ("earn", "redeem")  # what a member does; expiry and activation are the program's own doing


def naive_utc(moment: datetime) -> datetime:
    """Warehouse timestamps are naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _active_in_store(store: OperationalStore, since: datetime) -> set[str]:
    queries = (
        select(LedgerTransaction.member_key).where(
            LedgerTransaction.created_at >= since, LedgerTransaction.kind.in_(_MEMBER_ACTIONS)
        ),
        select(RecFeedback.member_key).where(RecFeedback.occurred_at >= since),
    )
    with store.session() as session:
        return {key for query in queries for key in session.scalars(query.distinct())}


def _active_in_warehouse(warehouse: Warehouse, since: datetime) -> set[str]:
    moment = naive_utc(since)
    orders, events, members = (warehouse.table(name) for name in ("orders", "events", "members"))
    recent = ibis.union(
        orders.filter(orders.ordered_at >= moment).select(member_key=orders.member_key.cast("string")),
        events.filter(events.occurred_at >= moment).select(member_key=events.member_key.cast("string")),
        members.filter(members.signup_at >= moment).select(member_key=members.member_key.cast("string")),
        distinct=True,
    )
    return {key for key in recent.to_pyarrow().column("member_key").to_pylist() if key is not None}


def inactive_members(store: OperationalStore, warehouse: Warehouse | None, since: datetime) -> list[str]:
    """Keys of members (with a key mapping) who show no activity at or after ``since``, sorted."""
    with store.session() as session:
        older = set(session.scalars(select(MemberIdentity.member_key).where(MemberIdentity.created_at < since)))
    candidates = older - _active_in_store(store, since)
    if not candidates:
        return []
    if warehouse is None:  # without the history nobody can tell who is active: refuse rather than guess
        raise StoreError("the warehouse does not exist, so member activity is unknown: run `patron init`")
    return sorted(candidates - _active_in_warehouse(warehouse, since))


def anonymize(store: OperationalStore, member_keys: Sequence[str], progress: Progress) -> int:
    """Shred the personal data and remove the key mapping of ``member_keys``; returns how many went."""
    progress.stage("anonymizing inactive members", len(member_keys))
    gone = 0
    for start in range(0, len(member_keys), _BATCH):
        batch = list(member_keys[start : start + _BATCH])
        with store.session() as session:
            for key in batch:
                shred_member(session, key)
            result = session.execute(delete(MemberIdentity).where(MemberIdentity.member_key.in_(batch)))
            gone += int(result.rowcount or 0)  # type: ignore[attr-defined]
        progress.advance(len(batch))
    return gone
