"""Finding members and assembling the member 360 view.

Who sees what of a member's personal fields (:func:`personal_view`): admins see
them in full; support sees them masked (``l***@example.com``, ``138****5678``,
``王*``) unless it gives a reason, which the caller records in the audit log;
every other role sees none, not even masked. Searching by e-mail or phone is for
callers that may see personal fields.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import ibis
from sqlalchemy import select

from patron.analytics.artefacts import BuildReader
from patron.analytics.rfm import SEGMENTS
from patron.auth.rules import allowed
from patron.errors import AuthorizationError, NotFoundError, ValidationError
from patron.members.models import MemberIdentity
from patron.members.schemas import MemberPage, MemberRead, MemberView, OrderRead, PersonalRead
from patron.members.vault_store import find_by_email, find_by_phone, read_personal
from patron.privacy.text import check_note
from patron.runtime import Runtime
from patron.tags.service import member_tags, tag_filter

__all__ = [
    "REASON_MAX",
    "REASON_MIN",
    "SORTS",
    "PersonalView",
    "SegmentName",
    "list_members",
    "mask_personal",
    "member_view",
    "personal_query_kind",
    "personal_view",
    "reveal_reason",
]

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
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,30}$")
_REASONS = ("reason_1", "reason_2", "reason_3")

PersonalView = Literal["none", "masked", "full"]
# Roles that see personal fields masked until they give a reason for seeing them in full.
_MASKED_UNTIL_REASON = frozenset({"support"})
REASON_MIN, REASON_MAX = 5, 300
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tabs are spaces; line breaks and the rest are refused


# --- who sees what -------------------------------------------------------------------


def personal_view(role: str, scopes: frozenset[str] | None, *, reason: str | None) -> PersonalView:
    """What a caller sees of personal fields: none without members:personal, masked for support without a reason."""
    if not allowed(role, "members:personal", scopes):
        return "none"
    return "masked" if role in _MASKED_UNTIL_REASON and not reason else "full"


def reveal_reason(text: str | None) -> str | None:
    """The reason given for seeing personal fields in full (trimmed), None if none was given."""
    if text is None or not text.strip():
        return None
    if _CONTROL.search(text.strip()):
        raise ValidationError("a reason is one line of plain text", field="reason")
    reason = " ".join(text.split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise ValidationError(
            f"a reason is {REASON_MIN} to {REASON_MAX} characters, e.g. 'customer asked to check the delivery address'",
            field="reason",
        )
    # The reason is kept in the audit log, which outlives an erasure: it may not carry an e-mail or a phone number.
    return check_note(reason, "reason", REASON_MAX)


def _mask_word(word: str) -> str:
    return word[:1] + "*" * max(1, len(word) - 1)


def _mask_name(name: str) -> str:
    # Chinese names keep the surname (the first character); Latin names the initial of each word.
    return " ".join(_mask_word(word) for word in name.split()) or "*"


def _mask_email(email: str) -> str:
    local, at, domain = email.strip().partition("@")
    return f"{local[:1]}***@{domain}" if at else _mask_word(local)


def _mask_phone(phone: str) -> str:
    digits = sum(ch.isdigit() for ch in phone)
    head, tail = (3, 4) if digits >= 8 else (0, 2)
    out, seen = [], 0
    for ch in phone.strip():
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > digits - tail else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_address(address: str) -> str:
    return address.strip()[:3] + "****" if len(address.strip()) > 6 else "****"


def _mask_birthday(birthday: str) -> str:
    return re.sub(r"[0-9]", "*", birthday)


_MASKS = {
    "name": _mask_name,
    "email": _mask_email,
    "phone": _mask_phone,
    "address": _mask_address,
    "birthday": _mask_birthday,
}


def mask_personal(personal: PersonalRead) -> PersonalRead:
    """The same fields partly hidden: ``l***@example.com``, ``138****5678``, ``王*``, ``浙江省****``, ``****-**-**``.

    The source and the customer id at the source stay: they are how support finds the member in the shop's
    own systems, and they hold no contact data.
    """
    hidden = {name: mask(value) for name, mask in _MASKS.items() if (value := getattr(personal, name))}
    return personal.model_copy(update={**hidden, "masked": True})


# --- search ----------------------------------------------------------------------------


def personal_query_kind(query: str) -> Literal["email", "phone"] | None:
    """Whether a search term is an e-mail or a phone number (a personal search), else None."""
    term = query.strip()
    if "@" in term:
        return "email"
    if _PHONE.match(term) and sum(ch.isdigit() for ch in term) >= 7:
        return "phone"
    return None


def _fields(profiles: ibis.Table) -> list[str]:
    """The member fields this build has (older builds lack the newer columns)."""
    present = set(profiles.columns)
    return [name for name in (*_MEMBER_FIELDS, *_REASONS) if name in present]


def _member(row: dict[str, Any]) -> MemberRead:
    reasons = [reason for name in _REASONS if (reason := row.pop(name, None))]
    return MemberRead(**row, churn_reasons=reasons)


def _matching_keys(runtime: Runtime, query: str, personal_search: bool) -> list[str] | None:
    """Member keys that a search term names, or None for 'no constraint'."""
    term = query.strip()
    if not term:
        return None
    kind = personal_query_kind(term)
    if kind == "email":
        if not personal_search:
            raise AuthorizationError(
                "searching by e-mail needs members:personal; search by member key or customer id instead"
            )
        return find_by_email(runtime.store, runtime.cipher, term)
    keys: list[str] = []
    with runtime.store.session() as sess:
        keys.extend(sess.scalars(select(MemberIdentity.member_key).where(MemberIdentity.source_id == term)))
    if kind == "phone" and personal_search:  # a number may be a customer id too: both are looked up
        keys.extend(find_by_phone(runtime.store, runtime.cipher, term))
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
    personal_search: bool = True,
) -> MemberPage:
    """Search by member key, source customer id, e-mail or phone; filter by segment and rule tag; paginate.

    ``personal_search`` says whether the caller may search by e-mail and phone (callers without
    members:personal pass False): an e-mail is then refused, a number matches customer ids only.
    """
    if segment is not None and segment not in {name for name, _, _ in SEGMENTS}:
        raise ValidationError(f"unknown segment {segment!r}", field="segment")
    if sort not in SORTS:
        raise ValidationError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}", field="sort")
    profiles = reader.table("profiles")
    keys = _matching_keys(runtime, query, personal_search)
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
    ties = [] if sort == "member_key" else [profiles.member_key]  # the key breaks ties, once
    rows = (
        profiles.order_by([key, *ties])
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


def _shown_personal(runtime: Runtime, member_key: str, include: bool, masked: bool) -> PersonalRead | None:
    if not include:
        return None
    personal = _personal(runtime, member_key)
    return mask_personal(personal) if masked else personal


def member_view(
    runtime: Runtime,
    reader: BuildReader,
    member_key: str,
    *,
    include_personal: bool,
    masked: bool = False,
    orders: int = 10,
) -> MemberView:
    """Member 360; personal fields only when the caller's role allows them, masked if ``masked``."""
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
        personal=_shown_personal(runtime, member_key, include_personal, masked),
        tags=member_tags(runtime.store, reader, member_key),
    )
