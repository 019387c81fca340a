"""An order's promotions: held at checkout, used for good at payment, given back on cancellation.

:func:`checkout` prices the cart as :func:`patron.promotions.service.price`
does, at the present time and for the member's own tier and segment, and in
the same transaction holds every promotion that applied for the order: a
coupon is reserved (:func:`~patron.promotions.coupons.reserve_coupon`); an
automatic promotion takes a use of its global limit and of the member's limit
and its discount from its budget with the same conditional updates
(:func:`~patron.promotions.coupons.take_use`), recorded as a redemption without
a coupon. Uses are taken in template order (a coupon's row just before its
template's), so concurrent checkouts do not deadlock. When another order took
the last use or the budget since the cart was priced, nothing is held and the
checkout is a ConflictError: price the cart again. :func:`hold_promotions` is
that second step on its own, for a cart priced by this store.

:func:`pay_order` makes an order's held uses final; :func:`cancel_order` gives
them back (uses, budget and the member's use), exactly as releasing a coupon
does. Every function takes a Session and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError
from patron.promotions.coupons import (
    give_back_use,
    redeem_coupon,
    release_coupon,
    reserve_coupon,
    take_use,
    window_problem,
)
from patron.promotions.models import Coupon, PromotionRedemption, PromotionTemplate
from patron.promotions.pricing import cents
from patron.promotions.schemas import (
    CartRequest,
    CheckoutRead,
    CheckoutRequest,
    OrderPromotionsRead,
    PricedCartRead,
    PromotionUseRead,
)
from patron.promotions.service import price
from patron.runtime import Runtime

__all__ = ["cancel_order", "checkout", "hold_promotions", "order_promotions", "pay_order"]

_LIVE = ("reserved", "redeemed")


@dataclass(frozen=True)
class _Use:
    id: int
    template_id: int
    template_code: str
    coupon_code: str | None
    member_key: str | None
    discount_cents: int
    status: str


def _uses(session: Session, order_reference: str) -> list[_Use]:
    rows = session.execute(
        select(PromotionRedemption, PromotionTemplate.code, Coupon.code)
        .join(PromotionTemplate, PromotionTemplate.id == PromotionRedemption.template_id)
        .outerjoin(Coupon, Coupon.id == PromotionRedemption.coupon_id)
        .where(PromotionRedemption.order_reference == order_reference)
        .order_by(PromotionRedemption.id)
        .execution_options(populate_existing=True)
    )
    return [
        _Use(r.id, r.template_id, code, coupon, r.member_key, r.discount_cents, r.status) for r, code, coupon in rows
    ]


def _read(order_reference: str, uses: list[_Use]) -> OrderPromotionsRead:
    return OrderPromotionsRead(
        order_reference=order_reference,
        uses=[
            PromotionUseRead(
                template_code=u.template_code,
                coupon_code=u.coupon_code,
                member_key=u.member_key,
                discount=Decimal(u.discount_cents) / 100,
                status=u.status,
            )
            for u in uses
        ],
    )


def order_promotions(session: Session, order_reference: str) -> OrderPromotionsRead:
    """Every promotion use an order has held, oldest first (released ones included)."""
    return _read(order_reference, _uses(session, order_reference))


def _hold_automatic(
    session: Session,
    template: PromotionTemplate,
    member_key: str | None,
    order_reference: str,
    amount: int,
    now: datetime,
) -> None:
    problem = window_problem(template, now)
    if problem:
        raise ConflictError(problem)
    take_use(session, template, member_key, amount)
    session.add(
        PromotionRedemption(
            template_id=template.id,
            coupon_id=None,
            member_key=member_key,
            order_reference=order_reference,
            discount_cents=amount,
            status="reserved",
            created_at=now,
            updated_at=now,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:  # another checkout of the same order, at the same time
        raise ConflictError(f"order {order_reference!r} holds promotion {template.code} already") from exc


def checkout(
    runtime: Runtime, session: Session, request: CheckoutRequest, *, now: datetime | None = None
) -> CheckoutRead:
    """Price the cart now and hold every promotion that applied for the order; all or nothing.

    ConflictError when the order holds promotions already (cancel it first) or a
    use, the budget or the member's limit ran out since pricing (price again).
    """
    reference = request.order_reference
    if any(use.status in _LIVE for use in _uses(session, reference)):
        raise ConflictError(f"order {reference!r} holds promotions already; cancel it before checking out again")
    moment = now or utcnow()
    cart = CartRequest(
        lines=request.lines, member_key=request.member_key, coupons=request.coupons, shipping_fee=request.shipping_fee
    )
    priced = price(runtime, session, cart, now=moment)
    return CheckoutRead(
        order_reference=reference,
        cart=priced,
        uses=hold_promotions(session, reference, request.member_key, priced, now=moment).uses,
    )


def hold_promotions(
    session: Session,
    order_reference: str,
    member_key: str | None,
    priced: PricedCartRead,
    *,
    now: datetime | None = None,
) -> OrderPromotionsRead:
    """Hold for the order every promotion the priced cart applied, with the discount it gave; all or nothing.

    The step of :func:`checkout` after pricing, for a cart priced by this store.
    ConflictError when a use, the budget or the member's limit ran out, or the
    promotion was paused or ended, since the cart was priced.
    """
    moment = now or utcnow()
    applied = [rule for rule in priced.rules if rule.applied]
    codes = {rule.code for rule in applied}
    templates = {t.code: t for t in session.scalars(select(PromotionTemplate).where(PromotionTemplate.code.in_(codes)))}
    for rule in sorted(applied, key=lambda r: templates[r.code].id):
        if rule.coupon_code is not None:
            reserve_coupon(
                session,
                rule.coupon_code,
                order_reference=order_reference,
                discount=rule.amount,
                member_key=member_key,
                now=moment,
            )
        else:
            _hold_automatic(session, templates[rule.code], member_key, order_reference, cents(rule.amount), moment)
    return order_promotions(session, order_reference)


def _in_template_order(uses: list[_Use]) -> list[_Use]:
    return sorted(uses, key=lambda u: (u.template_id, u.id))


def pay_order(session: Session, order_reference: str, *, now: datetime | None = None) -> OrderPromotionsRead:
    """The order was paid: every use it holds is redeemed. An order without promotions has nothing to do.

    ConflictError when the order was cancelled (its promotions were given back).
    """
    now = now or utcnow()
    uses = _uses(session, order_reference)
    held = [u for u in uses if u.status == "reserved"]
    if not held and uses and not any(u.status == "redeemed" for u in uses):
        raise ConflictError(f"order {order_reference!r} was cancelled: its promotions were given back")
    for use in _in_template_order(held):
        if use.coupon_code is not None:
            redeem_coupon(session, use.coupon_code, order_reference=order_reference, now=now)
            continue
        done = session.execute(
            update(PromotionRedemption)
            .where(PromotionRedemption.id == use.id, PromotionRedemption.status == "reserved")
            .values(status="redeemed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(f"order {order_reference!r} changed meanwhile; try again")
    return order_promotions(session, order_reference)


def cancel_order(session: Session, order_reference: str, *, now: datetime | None = None) -> OrderPromotionsRead:
    """The order was cancelled: every use it holds (reserved or redeemed) is given back; again, nothing to do."""
    now = now or utcnow()
    for use in _in_template_order([u for u in _uses(session, order_reference) if u.status in _LIVE]):
        if use.coupon_code is not None:
            release_coupon(session, use.coupon_code, order_reference=order_reference, now=now)
            continue
        done = session.execute(
            update(PromotionRedemption)
            .where(PromotionRedemption.id == use.id, PromotionRedemption.status.in_(_LIVE))
            .values(status="released", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]  # else a concurrent cancellation gave it back
            give_back_use(session, use.template_id, use.member_key, use.discount_cents)
    return order_promotions(session, order_reference)
