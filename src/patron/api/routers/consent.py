"""API routes: a member's consents per purpose, their history, and the restriction of processing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.consent.rules import Purpose
from patron.consent.schemas import ConsentHistoryPage, ConsentRead, ConsentUpdate, MemberConsentsRead
from patron.consent.service import MAX_PAGE_SIZE, consent_history, member_consents, set_consent

router = APIRouter(prefix="/members", tags=["consent"])

Readers = Annotated[Principal, Depends(require("consent:read"))]
Writers = Annotated[Principal, Depends(require("consent:write"))]
MemberKey = Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$", description="The member's opaque key")]


@router.get(
    "/{member_key}/consents",
    summary="A member's state per purpose (defaults where never asked) and any restriction",
    response_model=MemberConsentsRead,
)
def consents(member_key: MemberKey, runtime: Rt, _caller: Readers) -> MemberConsentsRead:
    return member_consents(runtime.store, member_key)


@router.get(
    "/{member_key}/consents/history",
    summary="A member's recorded consent statements, newest first",
    response_model=ConsentHistoryPage,
)
def history(
    member_key: MemberKey,
    runtime: Rt,
    _caller: Readers,
    purpose: Purpose | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> ConsentHistoryPage:
    return consent_history(runtime.store, member_key, purpose, page, page_size)


@router.put(
    "/{member_key}/consents/{purpose}",
    summary="Record a member's consent statement for a purpose (granted, denied or withdrawn)",
    response_model=ConsentRead,
)
def put_consent(
    member_key: MemberKey, purpose: Purpose, body: ConsentUpdate, request: Request, runtime: Rt, caller: Writers
) -> ConsentRead:
    result = set_consent(
        runtime.store,
        member_key,
        purpose,
        body.state,
        source=body.source,
        actor=caller.label,
        evidence=body.evidence,
        at=body.at,
    )
    audit(request, runtime, caller.label, "consent.set", member_key, purpose=purpose, state=body.state)
    return result
