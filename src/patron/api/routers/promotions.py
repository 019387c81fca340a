"""Promotion templates, coupons, cart pricing, order checkout and the rewards catalog.

Coupon, checkout, order and reward writes take an ``Idempotency-Key`` header: a
retry with the same key and body returns the first response (with
``Idempotent-Replayed: true``); the same key with another body is a 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.promotions import orders
from patron.promotions import rewards as catalog
from patron.promotions.coupons import (
    issue_coupon,
    member_coupons,
    redeem_coupon,
    release_coupon,
    reserve_coupon,
    write_once,
)
from patron.promotions.schemas import (
    CartRequest,
    CheckoutRead,
    CheckoutRequest,
    CodeBatchRead,
    CodesRequest,
    CouponRead,
    ExchangeRead,
    ExchangeRequest,
    IssueRequest,
    OrderPromotionsRead,
    OrderRequest,
    PricedCartRead,
    RedeemRequest,
    ReleaseRequest,
    ReserveRequest,
    RewardCreate,
    RewardRead,
    RewardUpdate,
    TemplateCreate,
    TemplateRead,
    TemplateStats,
    TemplateUpdate,
)
from patron.promotions.service import price
from patron.promotions.templates import (
    create_template,
    generate_codes,
    list_templates,
    template_stats,
    update_template,
)
from patron.runtime import Runtime

router = APIRouter(tags=["promotions"])

Readers = Annotated[Principal, Depends(require("loyalty:read"))]
Writers = Annotated[Principal, Depends(require("loyalty:write"))]
Managers = Annotated[Principal, Depends(require("loyalty:manage"))]
TemplateCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
CouponCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
MemberKey = Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$")]
RewardId = Annotated[int, Path(ge=1, le=2**31 - 1)]
KEY_DOC = "Makes the write safe to retry: same key and body -> the first response; another body -> 409."
RequiredKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=255, description=KEY_DOC)]
OptionalKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, description=KEY_DOC)]
REPLAY_HEADER = "Idempotent-Replayed"


def _once(
    runtime: Runtime,
    scope: str,
    key: str | None,
    request: dict[str, Any],
    action: Callable[[Session], BaseModel],
    status_code: int = status.HTTP_200_OK,
) -> tuple[JSONResponse, dict[str, Any], bool]:
    body, replayed = write_once(runtime.store, scope, key, request, action)
    headers = {REPLAY_HEADER: "true"} if replayed else None
    return JSONResponse(body, status_code=status_code, headers=headers), body, replayed


# --- templates -------------------------------------------------------------------------------


@router.get("/promotions/templates", summary="List promotion templates", response_model=list[TemplateRead])
def templates(runtime: Rt, _caller: Readers) -> list[TemplateRead]:
    with runtime.store.session() as session:
        return list_templates(session)


@router.post(
    "/promotions/templates",
    summary="Create a promotion template (fixed, percent, threshold tiers, free shipping or gift)",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateRead,
)
def add_template(body: TemplateCreate, request: Request, runtime: Rt, caller: Managers) -> TemplateRead:
    with runtime.store.session() as session:
        created = create_template(session, body, caller.label)
    audit(request, runtime, caller.label, "promotion.create", f"promotion:{created.code}", kind=created.kind)
    return created


@router.patch("/promotions/templates/{code}", summary="Change a promotion template", response_model=TemplateRead)
def change_template(
    code: TemplateCode, body: TemplateUpdate, request: Request, runtime: Rt, caller: Managers
) -> TemplateRead:
    with runtime.store.session() as session:
        changed = update_template(session, code, body)
    fields = sorted(body.model_fields_set)
    audit(request, runtime, caller.label, "promotion.update", f"promotion:{code}", fields=fields)
    return changed


@router.post(
    "/promotions/templates/{code}/codes",
    summary="Generate unique coupon codes of a template in bulk",
    status_code=status.HTTP_201_CREATED,
    response_model=CodeBatchRead,
)
def codes(code: TemplateCode, body: CodesRequest, request: Request, runtime: Rt, caller: Managers) -> CodeBatchRead:
    batch = generate_codes(runtime.store, code, body.count, prefix=body.prefix, length=body.length)
    audit(request, runtime, caller.label, "promotion.codes", f"promotion:{code}", count=batch.count, batch=batch.batch)
    return batch


@router.get(
    "/promotions/stats",
    summary="Per template: coupons issued, reserved, redeemed, released; discount given; budget left",
    response_model=list[TemplateStats],
)
def stats(runtime: Rt, _caller: Readers) -> list[TemplateStats]:
    with runtime.store.session() as session:
        return template_stats(session)


# --- coupons ---------------------------------------------------------------------------------


@router.post(
    "/coupons/issue",
    summary="Issue a coupon of a template to a member",
    status_code=status.HTTP_201_CREATED,
    response_model=CouponRead,
)
def issue(
    body: IssueRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: OptionalKey = None
) -> JSONResponse:
    def action(session: Session) -> CouponRead:
        return issue_coupon(session, body.template_code, body.member_key, body.reason)

    scope_request = body.model_dump(mode="json")
    response, out, replayed = _once(runtime, "coupon.issue", idempotency_key, scope_request, action, 201)
    if not replayed:
        audit(request, runtime, caller.label, "coupon.issue", f"coupon:{out['code']}", member_key=body.member_key)
    return response


@router.post(
    "/coupons/{code}/reserve",
    summary="Reserve a coupon for an order (counts against limits and budget); needs an Idempotency-Key",
    response_model=CouponRead,
)
def reserve(
    code: CouponCode,
    body: ReserveRequest,
    request: Request,
    runtime: Rt,
    caller: Writers,
    idempotency_key: RequiredKey,
) -> JSONResponse:
    def action(session: Session) -> CouponRead:
        return reserve_coupon(
            session, code, order_reference=body.order_reference, discount=body.discount, member_key=body.member_key
        )

    response, _, replayed = _once(
        runtime, "coupon.reserve", idempotency_key, {"code": code, **body.model_dump(mode="json")}, action
    )
    if not replayed:
        audit(request, runtime, caller.label, "coupon.reserve", f"coupon:{code}", order=body.order_reference)
    return response


@router.post(
    "/coupons/{code}/redeem",
    summary="Redeem a reserved coupon when its order is paid; needs an Idempotency-Key",
    response_model=CouponRead,
)
def redeem(
    code: CouponCode, body: RedeemRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: RequiredKey
) -> JSONResponse:
    def action(session: Session) -> CouponRead:
        return redeem_coupon(session, code, order_reference=body.order_reference)

    response, _, replayed = _once(
        runtime, "coupon.redeem", idempotency_key, {"code": code, **body.model_dump(mode="json")}, action
    )
    if not replayed:
        audit(request, runtime, caller.label, "coupon.redeem", f"coupon:{code}", order=body.order_reference)
    return response


@router.post(
    "/coupons/{code}/release",
    summary="Release a coupon when its order is cancelled; needs an Idempotency-Key",
    response_model=CouponRead,
)
def release(
    code: CouponCode, body: ReleaseRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: RequiredKey
) -> JSONResponse:
    def action(session: Session) -> CouponRead:
        return release_coupon(session, code, order_reference=body.order_reference)

    response, _, replayed = _once(
        runtime, "coupon.release", idempotency_key, {"code": code, **body.model_dump(mode="json")}, action
    )
    if not replayed:
        audit(request, runtime, caller.label, "coupon.release", f"coupon:{code}", order=body.order_reference)
    return response


@router.get(
    "/members/{member_key}/coupons", summary="A member's coupons, newest first", response_model=list[CouponRead]
)
def coupons_of(member_key: MemberKey, runtime: Rt, _caller: Readers) -> list[CouponRead]:
    with runtime.store.session() as session:
        return member_coupons(session, member_key)


@router.post(
    "/carts/price",
    summary="Price a cart: line discounts, and for every promotion whether it applied and why (read-only)",
    response_model=PricedCartRead,
)
def price_cart(body: CartRequest, runtime: Rt, _caller: Readers) -> PricedCartRead:
    with runtime.store.session() as session:
        return price(runtime, session, body)


# --- orders ----------------------------------------------------------------------------------


@router.post(
    "/carts/checkout",
    summary="Place an order from a cart: price it now and hold every promotion that applied (coupons and automatic"
    " ones) against their limits and budgets; 409 when one ran out since pricing; needs an Idempotency-Key",
    response_model=CheckoutRead,
)
def checkout(
    body: CheckoutRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: RequiredKey
) -> JSONResponse:
    def action(session: Session) -> CheckoutRead:
        return orders.checkout(runtime, session, body)

    response, out, replayed = _once(runtime, "cart.checkout", idempotency_key, body.model_dump(mode="json"), action)
    if not replayed:
        held = [use["coupon_code"] or use["template_code"] for use in out["uses"]]
        audit(request, runtime, caller.label, "cart.checkout", f"order:{body.order_reference}", promotions=held)
    return response


@router.get(
    "/orders/promotions",
    summary="The promotions an order holds or held (coupons and automatic ones) and where each stands",
    response_model=OrderPromotionsRead,
)
def order_promotions(
    runtime: Rt, _caller: Readers, order_reference: Annotated[str, Query(min_length=1, max_length=128)]
) -> OrderPromotionsRead:
    with runtime.store.session() as session:
        return orders.order_promotions(session, order_reference)


@router.post(
    "/orders/promotions/redeem",
    summary="The order was paid: the promotions it holds are used for good; needs an Idempotency-Key",
    response_model=OrderPromotionsRead,
)
def pay_order(
    body: OrderRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: RequiredKey
) -> JSONResponse:
    def action(session: Session) -> OrderPromotionsRead:
        return orders.pay_order(session, body.order_reference)

    response, _, replayed = _once(runtime, "order.redeem", idempotency_key, body.model_dump(mode="json"), action)
    if not replayed:
        audit(request, runtime, caller.label, "order.redeem", f"order:{body.order_reference}")
    return response


@router.post(
    "/orders/promotions/release",
    summary="The order was cancelled: the promotions it holds are given back (uses, budget, the member's use);"
    " needs an Idempotency-Key",
    response_model=OrderPromotionsRead,
)
def cancel_order(
    body: OrderRequest, request: Request, runtime: Rt, caller: Writers, idempotency_key: RequiredKey
) -> JSONResponse:
    def action(session: Session) -> OrderPromotionsRead:
        return orders.cancel_order(session, body.order_reference)

    response, _, replayed = _once(runtime, "order.release", idempotency_key, body.model_dump(mode="json"), action)
    if not replayed:
        audit(request, runtime, caller.label, "order.release", f"order:{body.order_reference}")
    return response


# --- rewards ---------------------------------------------------------------------------------


@router.get("/rewards", summary="The rewards catalog", response_model=list[RewardRead])
def rewards(runtime: Rt, _caller: Readers) -> list[RewardRead]:
    with runtime.store.session() as session:
        return catalog.list_rewards(session)


@router.post(
    "/rewards",
    summary="Add a reward (a coupon or a gift)",
    status_code=status.HTTP_201_CREATED,
    response_model=RewardRead,
)
def add_reward(body: RewardCreate, request: Request, runtime: Rt, caller: Managers) -> RewardRead:
    with runtime.store.session() as session:
        created = catalog.create_reward(session, body, caller.label)
    audit(request, runtime, caller.label, "reward.create", f"reward:{created.id}", name=created.name)
    return created


@router.patch("/rewards/{reward_id}", summary="Change a reward", response_model=RewardRead)
def change_reward(
    reward_id: RewardId, body: RewardUpdate, request: Request, runtime: Rt, caller: Managers
) -> RewardRead:
    with runtime.store.session() as session:
        changed = catalog.update_reward(session, reward_id, body)
    audit(request, runtime, caller.label, "reward.update", f"reward:{reward_id}", fields=sorted(body.model_fields_set))
    return changed


@router.post(
    "/rewards/{reward_id}/exchange",
    summary="Exchange a member's points for a reward; needs an Idempotency-Key",
    status_code=status.HTTP_201_CREATED,
    response_model=ExchangeRead,
)
def exchange(
    reward_id: RewardId,
    body: ExchangeRequest,
    request: Request,
    runtime: Rt,
    caller: Writers,
    idempotency_key: RequiredKey,
) -> JSONResponse:
    def action(session: Session) -> ExchangeRead:
        return catalog.exchange_reward(session, reward_id, body.member_key, actor=caller.label)

    scope_request = {"reward_id": reward_id, **body.model_dump(mode="json")}
    response, out, replayed = _once(runtime, "reward.exchange", idempotency_key, scope_request, action, 201)
    if not replayed:
        audit(
            request,
            runtime,
            caller.label,
            "reward.exchange",
            f"reward:{reward_id}",
            member_key=body.member_key,
            points=out["points"],
        )
    return response
