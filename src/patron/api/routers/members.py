"""Members: search, filter, paginate; member 360."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from patron.api.deps import Reader, Rt, audit, require
from patron.auth.rules import allowed
from patron.auth.service import Principal
from patron.members.schemas import MemberPage, MemberView
from patron.members.service import SegmentName, list_members, member_view

router = APIRouter(prefix="/members", tags=["members"])

Sort = Literal["monetary", "frequency", "recency_days", "last_order_at", "clv_12m", "churn_risk", "member_key"]


@router.get("", summary="Search and list members", response_model=MemberPage)
def members(
    runtime: Rt,
    _caller: Annotated[Principal, Depends(require("members:read"))],
    reader: Reader,
    q: Annotated[str, Query(max_length=200, description="member key, source customer id or e-mail")] = "",
    segment: SegmentName | None = None,
    tag: Annotated[str | None, Query(max_length=64, description="only members carrying this rule tag")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: Sort = "monetary",
    order: Literal["asc", "desc"] = "desc",
) -> MemberPage:
    return list_members(
        runtime,
        reader,
        query=q,
        segment=segment,
        tag=tag,
        page=page,
        page_size=page_size,
        sort=sort,
        descending=order == "desc",
    )


@router.get("/{member_key}", summary="Member 360", response_model=MemberView)
def member(
    request: Request,
    runtime: Rt,
    caller: Annotated[Principal, Depends(require("members:read"))],
    reader: Reader,
    member_key: Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$")],
) -> MemberView:
    personal = allowed(caller.role, "members:personal", caller.scopes)
    view = member_view(runtime, reader, member_key, include_personal=personal)
    if personal:
        audit(request, runtime, caller.label, "member.personal_read", member_key)
    return view
