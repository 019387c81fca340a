"""Members: search, filter, paginate; member 360 with field-level access to personal data."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from patron.api.deps import Reader, Rt, audit, require
from patron.auth.rules import allowed
from patron.auth.service import Principal
from patron.errors import AuthorizationError
from patron.members.schemas import MemberPage, MemberView
from patron.members.service import (
    REASON_MAX,
    REASON_MIN,
    SegmentName,
    list_members,
    member_view,
    personal_query_kind,
    personal_view,
    reveal_reason,
)

router = APIRouter(prefix="/members", tags=["members"])

Sort = Literal["monetary", "frequency", "recency_days", "last_order_at", "clv_12m", "churn_risk", "member_key"]


@router.get("", summary="Search and list members", response_model=MemberPage)
def members(
    request: Request,
    runtime: Rt,
    caller: Annotated[Principal, Depends(require("members:read"))],
    reader: Reader,
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="member key, source customer id, or (with members:personal) e-mail or phone number",
        ),
    ] = "",
    segment: SegmentName | None = None,
    tag: Annotated[str | None, Query(max_length=64, description="only members carrying this rule tag")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: Sort = "monetary",
    order: Literal["asc", "desc"] = "desc",
) -> MemberPage:
    personal = allowed(caller.role, "members:personal", caller.scopes)
    found = list_members(
        runtime,
        reader,
        query=q,
        segment=segment,
        tag=tag,
        page=page,
        page_size=page_size,
        sort=sort,
        descending=order == "desc",
        personal_search=personal,
    )
    kind = personal_query_kind(q)
    if personal and kind is not None:  # the term itself is never recorded, only what kind it was
        audit(request, runtime, caller.label, "member.personal_search", None, by=kind, matches=found.total)
    return found


@router.get("/{member_key}", summary="Member 360", response_model=MemberView)
def member(
    request: Request,
    runtime: Rt,
    caller: Annotated[Principal, Depends(require("members:read"))],
    reader: Reader,
    member_key: Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$")],
    reason: Annotated[
        str | None,
        Query(
            min_length=REASON_MIN,
            max_length=REASON_MAX,
            description="why personal fields are needed in full (support sees them masked without one); audited",
        ),
    ] = None,
) -> MemberView:
    given = reveal_reason(reason)
    view = personal_view(caller.role, caller.scopes, reason=given)
    if given is not None and view == "none":
        raise AuthorizationError(f"role {caller.role!r} lacks members:personal: no reason reveals personal fields")
    shown = member_view(runtime, reader, member_key, include_personal=view != "none", masked=view == "masked")
    if view != "none":
        details: dict[str, object] = {"view": view} if given is None else {"view": view, "reason": given}
        audit(request, runtime, caller.label, "member.personal_read", member_key, **details)
    return shown
