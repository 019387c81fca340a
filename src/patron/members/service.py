"""Finding members and assembling the member 360 view."""

from __future__ import annotations

import re
from typing import Any, Literal

import ibis
from sqlalchemy import select

from patron.analytics.artefacts import BuildReader
from patron.analytics.rfm import SEGMENTS
from patron.errors import NotFoundError, ValidationError
from patron.members.models import MemberIdentity
from patron.members.schemas import MemberPage, MemberRead, MemberView, OrderRead, PersonalRead
from patron.members.vault_store import find_by_email, read_personal
from patron.runtime import Runtime
from patron.tags.service import member_tags, tag_filter

__all__ = ["SORTS", "SegmentName", "list_members", "member_view"]

SegmentName = Literal[
    "hibernating",
    "at_risk",
    "cant_lose",
    "about_to_sleep",
    "need_attention",
    "loyal_customers",
    "promising",
    "new_customers",
    "potential_loyalists",
    "champions",
]
SORTS = ("monetary", "frequency", "recency_days", "last_order_at", "clv_12m", "churn_risk", "member_key")
_MEMBER_FIELDS = list(MemberRead.model_fields)


_KEY = re.compile(r"^m[0-9a-f]{1,16}$")
_REASONS = ("reason_1", "reason_2", "reason_3")


def _fields(profiles: ibis.Table) -> list[str]:
    """The member fields this build has (older builds lack the newer columns)."""
    present = set(profiles.columns)
    return [name for name in (*_MEMBER_FIELDS, *_REASONS) if name in present]


def _member(row: dict[str, Any]) -> MemberRead:
    reasons = [reason for name in _REASONS if (reason := row.pop(name, None))]
    return MemberRead(**row, churn_reasons=reasons)


def _matching_keys(runtime: Runtime, query: str) -> list[str] | None:
    """Member keys that a search term names, or None for 'no constraint'."""
    term = query.strip()
    if not term:
        return None
    if "@" in term:
        return find_by_email(runtime.store, runtime.cipher, term)
    keys: list[str] = []
    with runtime.store.session() as sess:
        keys.extend(sess.scalars(select(MemberIdentity.member_key).where(MemberIdentity.source_id == term)))
    if _KEY.match(term.lower()):
        keys.append(term.lower())
    return keys


def list_members(
    runtime: Runtime,
    reader: BuildReader,
    *,
    query: str = "",
    segment: str | None = None,
    tag: str | None = None,
    page: int = 1,
    page_size: int = 50,
    sort: str = "monetary",
    descending: bool = True,
) -> MemberPage:
    """Search by member key, source customer id or e-mail; filter by segment and rule tag; paginate."""
    if segment is not None and segment not in {name for name, _, _ in SEGMENTS}:
        raise ValidationError(f"unknown segment {segment!r}", field="segment")
    if sort not in SORTS:
        raise ValidationError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}", field="sort")
    profiles = reader.table("profiles")
    keys = _matching_keys(runtime, query)
    if keys is not None:
        exact = profiles.member_key.isin(keys) if keys else ibis.literal(False)
        prefix = profiles.member_key.startswith(query.strip().lower()) if _KEY.match(query.strip().lower()) else False
        profiles = profiles.filter(exact | prefix)
    if segment is not None:
        profiles = profiles.filter(profiles.segment == segment)
    if tag is not None:
        profiles = profiles.filter(tag_filter(runtime.store, reader, tag, profiles))
    total = int(profiles.count().execute())
    key = profiles[sort].desc() if descending else profiles[sort].asc()
    rows = (
        profiles.order_by([key, profiles.member_key])
        .limit(page_size, offset=(page - 1) * page_size)
        .select(_fields(profiles))
        .to_pyarrow()
        .to_pylist()
    )
    return MemberPage(items=[_member(row) for row in rows], total=total, page=page, page_size=page_size)


def _personal(runtime: Runtime, member_key: str) -> PersonalRead:
    with runtime.store.session() as sess:
        identity = sess.get(MemberIdentity, member_key)
        source = identity.source if identity else None
        source_id = identity.source_id if identity else None
    fields: dict[str, Any] = read_personal(runtime.store, runtime.cipher, member_key) or {}
    return PersonalRead(source=source, source_id=source_id, **fields)


def member_view(
    runtime: Runtime, reader: BuildReader, member_key: str, *, include_personal: bool, orders: int = 10
) -> MemberView:
    """Member 360; personal fields only when the caller's role allows them."""
    profiles = reader.table("profiles")
    rows = profiles.filter(profiles.member_key == member_key).select(_fields(profiles)).to_pyarrow().to_pylist()
    if not rows:
        raise NotFoundError(f"member {member_key} has no profile in the current build")
    facts = reader.table("orders")
    recent = (
        facts.filter(facts.member_key == member_key)
        .order_by(facts.ordered_at.desc())
        .limit(orders)
        .select("order_key", "ordered_at", "status", "amount", "discount", "lines", "channel")
        .to_pyarrow()
        .to_pylist()
    )
    return MemberView(
        profile=_member(rows[0]),
        as_of=str(reader.manifest["as_of"]),
        recent_orders=[OrderRead(**row) for row in recent],
        personal=_personal(runtime, member_key) if include_personal else None,
        tags=member_tags(runtime.store, reader, member_key),
    )
