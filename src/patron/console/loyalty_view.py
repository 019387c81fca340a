"""What the loyalty pages show: a member's points, tier and coupons; the program; promotions; a priced cart.

Every function reads through the loyalty and promotions services; nothing here
writes. Labels that depend on codes (transaction kinds, lot states, tier-change
reasons, promotion kinds, reasons a promotion did not apply) are translated
from keys listed in :data:`LOYALTY_KEYS` so the catalog test can prove each
language holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select

from patron.loyalty import ledger_reads
from patron.loyalty.earning import Period
from patron.loyalty.ledger_schemas import LotStatus, TransactionKind
from patron.loyalty.program_events import EVENTS, list_event_rules
from patron.loyalty.program_rules import Kind as RuleKind
from patron.loyalty.program_rules import list_rules
from patron.loyalty.tiers import Basis, ChangeReason, Downgrade, list_tiers, member_tier, program_settings
from patron.promotions.coupons import member_coupons
from patron.promotions.models import PromotionTemplate
from patron.promotions.pricing import Reason
from patron.promotions.rewards import list_rewards
from patron.promotions.schemas import CartRequest, PricedCartRead
from patron.promotions.service import price
from patron.promotions.templates import template_stats
from patron.runtime import Runtime

__all__ = [
    "CART_LINES",
    "LOYALTY_KEYS",
    "CartForm",
    "cart_from_form",
    "member_loyalty",
    "price_form",
    "program_context",
    "promotions_context",
]

CART_LINES = 4  # line rows the cart form offers
HISTORY_ROWS = 20
PROMOTION_KINDS = ("fixed", "percent", "threshold_tiers", "free_shipping", "gift")


def _keys() -> set[str]:
    keys = {f"loyalty.kind.{kind}" for kind in get_args(TransactionKind)}
    keys |= {f"loyalty.lot.{status}" for status in get_args(LotStatus)}
    keys |= {f"loyalty.change.{reason}" for reason in get_args(ChangeReason)}
    keys |= {f"promotions.kind.{kind}" for kind in PROMOTION_KINDS}
    keys |= {f"promotions.reason.{reason}" for reason in get_args(Reason)}
    keys |= {f"promotions.coupon.{s}" for s in ("issued", "reserved", "redeemed", "released", "expired")}
    keys |= {f"loyalty.basis.{b}" for b in get_args(Basis)} | {f"loyalty.downgrade.{d}" for d in get_args(Downgrade)}
    keys |= {f"loyalty.combine.{c}" for c in ("multiply", "max")} | {f"loyalty.period.{p}" for p in get_args(Period)}
    keys |= {f"loyalty.weekday.{d}" for d in range(7)} | {f"loyalty.event.{e}" for e in EVENTS}
    keys |= {f"loyalty.rule_kind.{k}" for k in get_args(RuleKind)}
    return keys


LOYALTY_KEYS = _keys()


def member_loyalty(runtime: Runtime, member_key: str) -> dict[str, Any]:
    """Tier, balances, live lots, the newest transactions and coupons of one member."""
    with runtime.store.session() as session:
        balance = ledger_reads.balance(session, member_key)
        lots = [lot for lot in ledger_reads.lots(session, member_key) if lot.status in ("pending", "active")]
        history = ledger_reads.history(session, member_key, 1, HISTORY_ROWS)
        tier = member_tier(session, member_key)
        coupons = member_coupons(session, member_key)
        templates = session.execute(
            select(PromotionTemplate.code, PromotionTemplate.name)
            .where(PromotionTemplate.status == "active", PromotionTemplate.automatic.is_(False))
            .order_by(PromotionTemplate.code)
        ).all()
    return {
        "balance": balance,
        "lots": lots,
        "history": history,
        "tier": tier,
        "coupons": coupons,
        "templates": [(code, name) for code, name in templates],
    }


def program_context(runtime: Runtime) -> dict[str, Any]:
    """The loyalty program: settings, tiers, earning rules and event rules."""
    with runtime.store.session() as session:
        return {
            "settings": program_settings(session),
            "tiers": list_tiers(session),
            "rules": list_rules(session),
            "events": list_event_rules(session),
        }


def promotions_context(runtime: Runtime) -> dict[str, Any]:
    """Coupon templates with their redemption statistics, and the rewards catalog."""
    with runtime.store.session() as session:
        return {"stats": template_stats(session), "rewards": list_rewards(session)}


@dataclass
class CartForm:
    """The cart form as typed, and what could not be read."""

    member_key: str = ""
    coupon: str = ""
    shipping_fee: str = "0"
    lines: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def cart_from_form(values: dict[str, str]) -> tuple[CartRequest | None, CartForm]:
    """Read the cart form (rows without a product are skipped); errors name the row and field."""
    form = CartForm(
        member_key=values.get("member_key", "").strip(),
        coupon=values.get("coupon", "").strip(),
        shipping_fee=values.get("shipping_fee", "0").strip() or "0",
    )
    lines: list[dict[str, Any]] = []
    for i in range(CART_LINES):
        row = {name: values.get(f"{name}_{i}", "").strip() for name in ("product", "category", "brand", "price", "qty")}
        form.lines.append(row)
        if not row["product"]:
            continue
        try:
            unit_price = Decimal(row["price"])
            quantity = int(row["qty"] or "1")
        except (InvalidOperation, ValueError):
            form.errors.append(f"line {i + 1}: price and quantity must be numbers")
            continue
        lines.append(
            {
                "line_id": f"L{i + 1}",
                "product": row["product"],
                "category": row["category"] or None,
                "brand": row["brand"] or None,
                "unit_price": unit_price,
                "quantity": quantity,
            }
        )
    while len(form.lines) < CART_LINES:
        form.lines.append({"product": "", "category": "", "brand": "", "price": "", "qty": ""})
    if not lines and not form.errors:
        form.errors.append("add at least one line with a product")
    if form.errors:
        return None, form
    try:
        request = CartRequest(
            lines=lines,
            member_key=form.member_key or None,
            coupons=[form.coupon] if form.coupon else [],
            shipping_fee=Decimal(form.shipping_fee),
        )
    except (PydanticValidationError, InvalidOperation) as exc:
        if isinstance(exc, PydanticValidationError):
            form.errors.extend(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
            )
        else:
            form.errors.append("shipping fee must be a number")
        return None, form
    return request, form


def price_form(runtime: Runtime, request: CartRequest) -> PricedCartRead:
    """Price the cart without writing anything."""
    with runtime.store.session() as session:
        return price(runtime, session, request)
