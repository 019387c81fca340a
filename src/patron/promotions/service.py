"""Promotions as a library: price a cart against the store, plus the domain's operations in one place.

``price`` is read-only: it loads the active automatic promotions, the given
coupons and the member's use counts, then hands everything to the pure
:func:`patron.promotions.pricing.price_cart`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from patron.analytics.artefacts import reader_for
from patron.db.base import utcnow
from patron.errors import NotFoundError
from patron.promotions.coupons import (
    issue_coupon,
    member_coupons,
    redeem_coupon,
    release_coupon,
    reserve_coupon,
    write_once,
)
from patron.promotions.models import Coupon, PromotionTemplate, PromotionUsage
from patron.promotions.pricing import Candidate, CartLine, MemberContext, PricedCart, RuleOutcome, price_cart
from patron.promotions.schemas import CartRequest, PricedCartRead, PricedLineRead, RuleOutcomeRead
from patron.promotions.templates import (
    create_template,
    generate_codes,
    get_template,
    list_templates,
    promotion_of,
    template_stats,
    update_template,
)
from patron.runtime import Runtime

__all__ = [
    "create_template",
    "generate_codes",
    "get_template",
    "issue_coupon",
    "list_templates",
    "member_context",
    "member_coupons",
    "price",
    "redeem_coupon",
    "release_coupon",
    "reserve_coupon",
    "template_stats",
    "update_template",
    "write_once",
]

log = logging.getLogger(__name__)


def _segment(runtime: Runtime, member_key: str) -> str | None:
    try:
        reader = reader_for(runtime.settings.artefact_dir)
    except NotFoundError:
        return None
    profiles = reader.table("profiles")
    rows = profiles.filter(profiles.member_key == member_key).select("segment").limit(1).to_pyarrow().to_pylist()
    return str(rows[0]["segment"]) if rows and rows[0]["segment"] is not None else None


def _tier(session: Session, member_key: str) -> str | None:
    try:
        from patron.loyalty.tiers import current_tier
    except ImportError:  # the loyalty program is not installed in this build
        return None
    try:
        with session.begin_nested():
            return current_tier(session, member_key)
    except SQLAlchemyError:  # tiers not migrated yet
        log.debug("member tier unavailable", extra={"member_key": member_key})
        return None


def member_context(
    runtime: Runtime, session: Session, member_key: str | None, tier: str | None, segment: str | None
) -> MemberContext:
    """The buyer as pricing sees them; tier and segment are looked up only when not given."""
    if member_key is not None:
        tier = tier if tier is not None else _tier(session, member_key)
        segment = segment if segment is not None else _segment(runtime, member_key)
    return MemberContext(member_key=member_key, tier=tier, segment=segment)


def _coupon_candidates(
    session: Session, codes: list[str], member_key: str | None
) -> tuple[list[Candidate], list[RuleOutcome]]:
    wanted = list(dict.fromkeys(code.strip().upper() for code in codes))
    found = {
        coupon.code: (coupon, template)
        for coupon, template in session.execute(
            select(Coupon, PromotionTemplate)
            .join(PromotionTemplate, PromotionTemplate.id == Coupon.template_id)
            .where(Coupon.code.in_(wanted))
        )
    }
    candidates, unknown = [], []
    for code in wanted:
        if code not in found:
            unknown.append(
                RuleOutcome(code, "", "unknown", code, False, "coupon_unavailable", f"there is no coupon {code}")
            )
            continue
        coupon, template = found[code]
        problem = None
        if coupon.status not in ("issued", "released"):
            problem = f"coupon {code} is {coupon.status}"
        elif coupon.member_key and coupon.member_key != member_key:
            problem = f"coupon {code} belongs to another member"
        candidates.append(Candidate(promotion_of(template), coupon_code=code, unavailable=problem))
    return candidates, unknown


def _with_member_use(session: Session, candidates: list[Candidate], member_key: str | None) -> list[Candidate]:
    if member_key is None or not candidates:
        return candidates
    uses = dict(
        session.execute(
            select(PromotionTemplate.code, PromotionUsage.uses)
            .join(PromotionUsage, PromotionUsage.template_id == PromotionTemplate.id)
            .where(
                PromotionUsage.member_key == member_key,
                PromotionTemplate.code.in_({c.promotion.code for c in candidates}),
            )
        ).all()
    )
    out = []
    for cand in candidates:
        used = uses.get(cand.promotion.code, 0)
        out.append(replace(cand, promotion=replace(cand.promotion, member_used=used)))
    return out


def price(runtime: Runtime, session: Session, request: CartRequest, *, now: datetime | None = None) -> PricedCartRead:
    """Price a cart: automatic promotions plus the given coupons; nothing is written."""
    moment = request.now or now or utcnow()
    member = member_context(runtime, session, request.member_key, request.tier, request.segment)
    automatic = [
        Candidate(promotion_of(row))
        for row in session.scalars(
            select(PromotionTemplate).where(PromotionTemplate.automatic.is_(True), PromotionTemplate.status == "active")
        )
    ]
    coupons, unknown = _coupon_candidates(session, request.coupons, request.member_key)
    candidates = _with_member_use(session, automatic + coupons, request.member_key)
    lines = [
        CartLine(line.line_id, line.product, line.unit_price, line.quantity, line.category, line.brand)
        for line in request.lines
    ]
    priced = price_cart(lines, candidates, member, now=moment, shipping_fee=request.shipping_fee)
    return priced_read(priced, member, moment, unknown)


def priced_read(
    priced: PricedCart, member: MemberContext, moment: datetime, extra: list[RuleOutcome] | None = None
) -> PricedCartRead:
    """The outward form of a priced cart."""
    rules = [*priced.rules, *(extra or [])]
    return PricedCartRead(
        member_key=member.member_key,
        tier=member.tier,
        segment=member.segment,
        priced_at=moment,
        lines=[
            PricedLineRead(
                line_id=line.line_id,
                product=line.product,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                discount=line.discount,
                total=line.total,
                gift=line.gift,
                discounts=dict(line.discounts),
            )
            for line in priced.lines
        ],
        rules=[
            RuleOutcomeRead(
                code=rule.code,
                name=rule.name,
                kind=rule.kind,
                coupon_code=rule.coupon_code,
                applied=rule.applied,
                reason=rule.reason,
                message=rule.message,
                amount=rule.amount,
                lines=dict(rule.lines),
                shortfall=rule.shortfall,
                next_saving=rule.next_saving,
                winner=rule.winner,
            )
            for rule in rules
        ],
        subtotal=priced.subtotal,
        discount=priced.discount,
        shipping_fee=priced.shipping_fee,
        shipping_discount=priced.shipping_discount,
        total=priced.total,
    )
