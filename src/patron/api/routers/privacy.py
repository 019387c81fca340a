"""API routes: data-subject requests (export, correction, restriction, erasure) and their 30-day deadline.

A request is filed (``POST /privacy/requests``), optionally started, then
executed: an export answers with the member's JSON document, a correction
takes the new values, a restriction stops all processing, an erasure shreds
the member's personal data. Audit entries carry the member key and counts,
never personal values.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict

from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.consent.schemas import RestrictionRead
from patron.consent.service import lift_restriction
from patron.privacy import service
from patron.privacy.schemas import (
    Correction,
    DueFilter,
    Execution,
    PrivacyRequestCreate,
    PrivacyRequestPage,
    PrivacyRequestRead,
    Rejection,
    RequestKind,
    RequestStatus,
)

router = APIRouter(prefix="/privacy", tags=["privacy"])

Managers = Annotated[Principal, Depends(require("privacy:manage"))]
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The request's number")]
MemberKey = Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$", description="The member's opaque key")]


class ExecuteBody(BaseModel):
    """What executing a request needs: the new values, for a correction only."""

    model_config = ConfigDict(extra="forbid")

    correction: Correction | None = None


@router.post(
    "/requests",
    summary="File a member's request (export, correction, restriction, erasure); due 30 days after receipt",
    status_code=status.HTTP_201_CREATED,
    response_model=PrivacyRequestRead,
)
def create(body: PrivacyRequestCreate, request: Request, runtime: Rt, caller: Managers) -> PrivacyRequestRead:
    created = service.create_request(runtime.store, body, caller.label)
    audit(request, runtime, caller.label, "privacy.request", body.member_key, request_id=created.id, kind=body.kind)
    return created


@router.get(
    "/requests", summary="Requests, filtered by deadline, status, kind or member", response_model=PrivacyRequestPage
)
def requests(
    runtime: Rt,
    _caller: Managers,
    due: Annotated[DueFilter | None, Query(description="open, overdue, or due within 7 days")] = None,
    status: RequestStatus | None = None,
    kind: RequestKind | None = None,
    member_key: Annotated[str | None, Query(pattern=r"^m[0-9a-f]{16}$")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 50,
) -> PrivacyRequestPage:
    return service.list_requests(
        runtime.store, due=due, status=status, kind=kind, member_key=member_key, page=page, page_size=page_size
    )


@router.get("/requests/{request_id}", summary="One request with its deadline", response_model=PrivacyRequestRead)
def get(request_id: RequestId, runtime: Rt, _caller: Managers) -> PrivacyRequestRead:
    return service.get_request(runtime.store, request_id)


@router.post(
    "/requests/{request_id}/start",
    summary="Mark a request as being handled by the caller",
    response_model=PrivacyRequestRead,
)
def start(request_id: RequestId, request: Request, runtime: Rt, caller: Managers) -> PrivacyRequestRead:
    started = service.start_request(runtime.store, request_id, caller.label)
    audit(request, runtime, caller.label, "privacy.start", started.member_key, request_id=request_id)
    return started


@router.post(
    "/requests/{request_id}/execute",
    summary="Carry out a request and complete it (an export answers with the member's document)",
    response_model=Execution,
)
def execute(
    request_id: RequestId, request: Request, runtime: Rt, caller: Managers, body: ExecuteBody | None = None
) -> Execution:
    done = service.execute(runtime, request_id, caller.label, body.correction if body else None)
    details = {"request_id": request_id, "kind": done.request.kind, **done.request.outcome}
    audit(request, runtime, caller.label, f"privacy.{done.request.kind}", done.request.member_key, **details)
    return done


@router.post("/requests/{request_id}/reject", summary="Close a request without carrying it out, with a reason")
def reject(
    request_id: RequestId, body: Rejection, request: Request, runtime: Rt, caller: Managers
) -> PrivacyRequestRead:
    rejected = service.reject_request(runtime.store, request_id, body.reason, caller.label)
    audit(request, runtime, caller.label, "privacy.reject", rejected.member_key, request_id=request_id)
    return rejected


@router.delete(
    "/restrictions/{member_key}",
    summary="Lift a restriction of processing (not an erased member's)",
    response_model=RestrictionRead,
)
def lift(member_key: MemberKey, request: Request, runtime: Rt, caller: Managers) -> RestrictionRead:
    lifted = lift_restriction(runtime.store, member_key)
    audit(request, runtime, caller.label, "privacy.lift_restriction", member_key, request_id=lifted.request_id)
    return lifted
