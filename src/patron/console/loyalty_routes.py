"""Console routes of the loyalty program and promotions.

``GET /loyalty`` (tiers, earning and event rules), ``GET /promotions`` (coupon
templates with redemption statistics, rewards), ``GET|POST /promotions/cart``
(price a cart; redeem its coupon), ``POST /members/{key}/coupons`` (issue a
coupon from the member page).

Reading needs ``loyalty:read``; issuing and redeeming need ``loyalty:write``
and a CSRF token. Redeeming goes through an idempotency key carried by the
form, so a double submit redeems once.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patron.api.deps import Rt, audit
from patron.auth.service import Principal
from patron.console.access import User, can, check_csrf, page_user, redirect, require
from patron.console.csrf import CSRF_FIELD
from patron.console.i18n import Translator
from patron.console.loyalty_view import (
    CART_LINES,
    CartForm,
    cart_from_form,
    price_form,
    program_context,
    promotions_context,
)
from patron.console.rendering import language_of, render
from patron.db.idempotency import run_idempotent
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.promotions.coupons import issue_coupon, redeem_coupon, reserve_coupon
from patron.promotions.schemas import PricedCartRead
from patron.runtime import Runtime

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
Token = Annotated[str, Form(alias=CSRF_FIELD)]
_MEMBER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _base(user: Principal, active: str) -> dict[str, Any]:
    return {
        "user": page_user(user),
        "active": active,
        "can_write": can(user, "loyalty:write"),
        "can_manage": can(user, "loyalty:manage"),
    }


@router.get("/loyalty")
def loyalty(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "loyalty:read")
    return render(request, "loyalty.html", {**_base(user, "loyalty"), **program_context(runtime)})


@router.get("/promotions")
def promotions(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "loyalty:read")
    return render(request, "promotions.html", {**_base(user, "promotions"), **promotions_context(runtime)})


def _cart_page(
    request: Request,
    user: Principal,
    form: CartForm,
    priced: PricedCartRead | None = None,
    *,
    notices: list[str] | None = None,
    status: int = 200,
) -> Response:
    context = {
        **_base(user, "promotions"),
        "form": form,
        "priced": priced,
        "notices": notices or [],
        "redeem_key": secrets.token_urlsafe(12),
    }
    return render(request, "cart.html", context, status=status)


@router.get("/promotions/cart")
def cart(request: Request, user: User, member: str = "", coupon: str = "") -> Response:
    require(user, "loyalty:read")
    form = CartForm(member_key=member[:64], coupon=coupon[:64])
    form.lines = [{"product": "", "category": "", "brand": "", "price": "", "qty": ""} for _ in range(CART_LINES)]
    return _cart_page(request, user, form)


def _coupon_discount(priced: PricedCartRead, code: str) -> Decimal | None:
    for rule in priced.rules:
        if rule.coupon_code and rule.coupon_code.upper() == code.upper() and rule.applied:
            return rule.amount
    return None


@router.post("/promotions/cart")
async def price_cart(request: Request, runtime: Rt, user: User) -> Response:
    raw = await request.form()
    values = {key: str(value) for key, value in raw.items()}
    check_csrf(request, runtime, values.get(CSRF_FIELD, ""))
    require(user, "loyalty:read")
    translate = Translator(language_of(request))
    cart_request, form = cart_from_form(values)
    if cart_request is None:
        return _cart_page(request, user, form, status=422)
    try:
        priced = price_form(runtime, cart_request)
    except (ValidationError, NotFoundError) as exc:
        form.errors.append(str(exc))
        return _cart_page(request, user, form, status=422)
    if values.get("action") != "redeem":
        return _cart_page(request, user, form, priced)
    require(user, "loyalty:write")
    code = form.coupon
    discount = _coupon_discount(priced, code) if code else None
    if not code or discount is None:
        form.errors.append(translate("cart.nothing_to_redeem"))
        return _cart_page(request, user, form, priced, status=409)
    order = f"console-{values.get('redeem_key', '')[:32] or secrets.token_hex(8)}"

    def redeem(session: Session) -> dict[str, Any]:
        reserve_coupon(session, code, order_reference=order, discount=discount, member_key=form.member_key or None)
        used = redeem_coupon(session, code, order_reference=order)
        return {"code": used.code, "status": used.status, "order": order, "discount": str(discount)}

    key = values.get("redeem_key", "") or secrets.token_urlsafe(12)
    try:
        outcome, _replayed = run_idempotent(
            runtime.store, "console.cart-redeem", key, {"code": code, "order": order}, redeem
        )
    except (ConflictError, NotFoundError, ValidationError) as exc:
        form.errors.append(str(exc))
        return _cart_page(request, user, form, priced, status=409)
    audit(request, runtime, user.label, "coupon.redeem", f"coupon:{code}", order=order, channel="console")
    notice = translate("cart.redeemed", code=outcome["code"], order=outcome["order"])
    return _cart_page(request, user, form, priced, notices=[notice])


@router.post("/members/{member_key}/coupons")
def issue(
    request: Request,
    runtime: Rt,
    user: User,
    member_key: str,
    template: Text = "",
    reason: Text = "",
    csrf_token: Token = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "members:read", "loyalty:write")
    if not _MEMBER_KEY.match(member_key):
        return render(request, "error.html", {"kind": "member_not_found", "signed_in": True}, status=404)
    try:
        with runtime.store.session() as session:
            coupon = issue_coupon(session, template, member_key, reason[:256] or "console")
    except (NotFoundError, ConflictError, ValidationError):
        return redirect(f"/members/{member_key}?" + urlencode({"coupon_error": template[:64]}) + "#loyalty")
    audit(request, runtime, user.label, "coupon.issue", f"coupon:{coupon.code}", member=member_key, channel="console")
    return redirect(f"/members/{member_key}?" + urlencode({"issued": coupon.code}) + "#loyalty")


def loyalty_notices(request: Request, translate: Translator) -> list[str]:
    """Messages of the coupon form that redirected to the member page."""
    params = request.query_params
    if issued := params.get("issued"):
        return [translate("loyalty.coupon_issued", code=issued[:64])]
    if failed := params.get("coupon_error"):
        return [translate("loyalty.coupon_failed", template=failed[:64])]
    return []


def member_panel(runtime: Runtime, user: Principal, member_key: str) -> dict[str, Any] | None:
    """The loyalty panel of the member page, or None when the operator may not read loyalty."""
    if not can(user, "loyalty:read"):
        return None
    from patron.console.loyalty_view import member_loyalty

    return {**member_loyalty(runtime, member_key), "can_issue": can(user, "loyalty:write")}
