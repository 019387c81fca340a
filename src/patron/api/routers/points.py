"""API routes: loyalty points (balances, lots, history, earning, redeeming, adjusting, reversing, jobs).

Every write needs an idempotency key: the ``Idempotency-Key`` header, or the
``idempotency_key`` query parameter for senders that cannot set headers. The
same key with the same request returns the first result with an
``Idempotent-Replayed: true`` header; with a different request it is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.errors import ValidationError
from patron.loyalty import ledger_service as points
from patron.loyalty.ledger_reads import MAX_PAGE_SIZE
from patron.loyalty.ledger_schemas import (
    MEMBER_KEY_PATTERN,
    AdjustRequest,
    BalanceRead,
    EarnRequest,
    JobResult,
    LedgerPage,
    LedgerTransactionRead,
    LotRead,
    RedeemRequest,
    ReverseRequest,
    ReverseResult,
)

router = APIRouter(prefix="/loyalty", tags=["loyalty points"])

Readers = Annotated[Principal, Depends(require("loyalty:read"))]
Writers = Annotated[Principal, Depends(require("loyalty:write"))]
Adjusters = Annotated[Principal, Depends(require("loyalty:adjust"))]
Managers = Annotated[Principal, Depends(require("loyalty:manage"))]
MemberKey = Annotated[str, Path(pattern=MEMBER_KEY_PATTERN, description="The member's opaque key")]
HeaderKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
QueryKey = Annotated[str | None, Query(max_length=255, description="Instead of the Idempotency-Key header")]
AsOf = Annotated[datetime | None, Query(description="Judge what is due at this moment (default now)")]
MEMBER = "/members/{member_key}/points"


def _key(header: str | None, query: str | None) -> str:
    key = header or query
    if not key:
        raise ValidationError("send an Idempotency-Key header with each points write", "header.Idempotency-Key")
    return key


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.get(MEMBER, summary="A member's points balance", response_model=BalanceRead)
def balance(member_key: MemberKey, runtime: Rt, _caller: Readers) -> BalanceRead:
    return points.get_balance(runtime.store, member_key)


@router.get(MEMBER + "/lots", summary="A member's points lots, oldest first", response_model=list[LotRead])
def lots(member_key: MemberKey, runtime: Rt, _caller: Readers) -> list[LotRead]:
    return points.get_lots(runtime.store, member_key)


@router.get(MEMBER + "/history", summary="A member's points transactions, newest first", response_model=LedgerPage)
def history(
    member_key: MemberKey,
    runtime: Rt,
    _caller: Readers,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> LedgerPage:
    return points.get_history(runtime.store, member_key, page, page_size)


@router.post(MEMBER + "/earn", summary="Credit points for a reference (once per reference)")
def earn(
    member_key: MemberKey,
    body: EarnRequest,
    request: Request,
    response: Response,
    runtime: Rt,
    caller: Writers,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> LedgerTransactionRead:
    txn, replayed = points.earn_points(runtime.store, _key(header, idempotency_key), member_key, body, caller.label)
    _replayed(response, replayed)
    if not replayed:
        target = f"member:{member_key}"
        audit(
            request,
            runtime,
            caller.label,
            "points.earn",
            target,
            points=body.points,
            reference=body.reference,
            txn=txn.id,
        )
    return txn


@router.post(MEMBER + "/redeem", summary="Spend available points for a reference (once per reference)")
def redeem(
    member_key: MemberKey,
    body: RedeemRequest,
    request: Request,
    response: Response,
    runtime: Rt,
    caller: Writers,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> LedgerTransactionRead:
    txn, replayed = points.redeem_points(runtime.store, _key(header, idempotency_key), member_key, body, caller.label)
    _replayed(response, replayed)
    if not replayed:
        target = f"member:{member_key}"
        audit(
            request,
            runtime,
            caller.label,
            "points.redeem",
            target,
            points=body.points,
            reference=body.reference,
            txn=txn.id,
        )
    return txn


@router.post(MEMBER + "/adjust", summary="Correct a member's points by hand, with a reason (audited)")
def adjust(
    member_key: MemberKey,
    body: AdjustRequest,
    request: Request,
    response: Response,
    runtime: Rt,
    caller: Adjusters,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> LedgerTransactionRead:
    txn, replayed = points.adjust_points(runtime.store, _key(header, idempotency_key), member_key, body, caller.label)
    _replayed(response, replayed)
    if not replayed:
        target = f"member:{member_key}"
        audit(
            request, runtime, caller.label, "points.adjust", target, points=body.points, reason=body.reason, txn=txn.id
        )
    return txn


@router.post("/points/reverse", summary="Reverse the points earned and redeemed under a reference (a return)")
def reverse(
    body: ReverseRequest,
    request: Request,
    response: Response,
    runtime: Rt,
    caller: Writers,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> ReverseResult:
    result, replayed = points.reverse_points(runtime.store, _key(header, idempotency_key), body, caller.label)
    _replayed(response, replayed)
    if not replayed:
        reversal = result.reversal
        details: dict[str, object] = {"reference": body.reference, "reason": body.reason}
        if reversal is not None:
            details |= {"points": reversal.points, "shortfall": reversal.shortfall, "txn": reversal.id}
        audit(request, runtime, caller.label, "points.reverse", f"reference:{body.reference}", **details)
    return result


@router.post("/jobs/expire-points", summary="Expire the points due by now (or as_of)", response_model=JobResult)
def expire_points(request: Request, runtime: Rt, caller: Managers, as_of: AsOf = None) -> JobResult:
    result = points.run_expiry(runtime.store, as_of)
    audit(request, runtime, caller.label, "points.expire", None, lots=result.lots, as_of=result.as_of.isoformat())
    return result


@router.post("/jobs/activate-points", summary="Activate the pending points due by now (or as_of)")
def activate_points(request: Request, runtime: Rt, caller: Managers, as_of: AsOf = None) -> JobResult:
    result = points.run_activation(runtime.store, as_of)
    audit(request, runtime, caller.label, "points.activate", None, lots=result.lots, as_of=result.as_of.isoformat())
    return result
