"""Cart pricing: which promotions apply to a cart, and how much each line saves.

A pure function of its inputs (the cart, the candidate promotions with their
usage counters, the member, the shipping fee and the time): no store, no
clock, so re-pricing the same cart gives the same answer and the answer does
not depend on the order the lines were given in.

Money is ``Decimal`` with two places, rounded half up (``ROUND_HALF_UP``);
internally everything is integer cents. A promotion's discount is spread over
its eligible lines in proportion to their (running) amounts; the cents that
proportional shares leave over go one each to the lines with the largest
remainders, ties by line id, so the line discounts always add up exactly to
the promotion's discount.

Order of work:

1. each candidate is checked on its own (window, audience, coupon, limits,
   budget, scope, minimum spend) and gets a reason code when it cannot apply;
2. exclusive promotions of one stacking group compete: the best for the
   customer (largest saving on the undiscounted cart; tie: higher priority,
   then code) stays, the others are ``excluded_by_exclusive``;
3. the remaining promotions apply in priority order (higher first, then code)
   on the running amounts left by the ones before them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from patron.errors import ValidationError
from patron.promotions.cart import (
    DEFAULT_EXCLUSIVE_GROUP,
    Candidate,
    CartLine,
    MemberContext,
    PricedCart,
    PricedLine,
    Promotion,
    Reason,
    RuleOutcome,
    allocate,
    amount,
    cents,
    money,
)

__all__ = [
    "DEFAULT_EXCLUSIVE_GROUP",
    "Candidate",
    "CartLine",
    "MemberContext",
    "PricedCart",
    "PricedLine",
    "Promotion",
    "Reason",
    "RuleOutcome",
    "allocate",
    "cents",
    "money",
    "price_cart",
]

# --- one candidate on its own ---------------------------------------------------------


@dataclass
class _Quote:
    """What a promotion would give on given running amounts, or why it gives nothing."""

    discount: int = 0
    shipping: int = 0
    eligible: tuple[str, ...] = ()
    reason: Reason | None = None
    message: str = ""
    shortfall: int | None = None
    next_saving: int | None = None


def _static_reason(cand: Candidate, member: MemberContext, now: datetime) -> tuple[Reason, str] | None:
    promo = cand.promotion
    if not promo.active:
        return "inactive", f"{promo.code} is not active"
    if promo.starts_at is not None and now < promo.starts_at:
        return "not_started", f"{promo.code} starts at {promo.starts_at.isoformat()}"
    if promo.ends_at is not None and now >= promo.ends_at:
        return "expired", f"{promo.code} ended at {promo.ends_at.isoformat()}"
    if promo.segments and member.segment not in promo.segments:
        return "audience_mismatch", f"for segments {', '.join(promo.segments)}; the member is {member.segment}"
    if promo.tiers and member.tier not in promo.tiers:
        return "audience_mismatch", f"for tiers {', '.join(promo.tiers)}; the member is {member.tier}"
    if cand.unavailable:
        return "coupon_unavailable", cand.unavailable
    if promo.global_limit is not None and promo.used >= promo.global_limit:
        return "limit_reached", f"all {promo.global_limit} uses are taken"
    if promo.per_member_limit is not None and promo.member_used >= promo.per_member_limit:
        return "limit_reached", f"the member has used it {promo.member_used} of {promo.per_member_limit} times"
    if promo.budget is not None and promo.spent >= promo.budget:
        return "budget_exhausted", f"its budget of {money(promo.budget)} is spent"
    return None


def _in_scope(promo: Promotion, line: CartLine) -> bool:
    return (
        (not promo.categories or line.category in promo.categories)
        and (not promo.brands or line.brand in promo.brands)
        and (not promo.products or line.product in promo.products)
    )


def _tiers(promo: Promotion) -> list[tuple[int, int]]:
    return [(cents(t["threshold"]), cents(t["discount"])) for t in promo.params["tiers"]]


def _percent_of(promo: Promotion, base: int) -> int:
    share = (Decimal(base) * Decimal(str(promo.params["percent"])) / 100).quantize(Decimal(1), ROUND_HALF_UP)
    cap = promo.params.get("cap")
    return int(share) if cap is None else min(int(share), cents(cap))


def _saving_at(promo: Promotion, base: int) -> int:
    """The discount a promotion gives on an eligible subtotal of ``base`` cents (before budget)."""
    if promo.kind == "fixed":
        return min(cents(promo.params["amount"]), base)
    if promo.kind == "percent":
        return min(_percent_of(promo, base), base)
    if promo.kind == "threshold_tiers":
        reached = [disc for threshold, disc in _tiers(promo) if base >= threshold]
        return min(reached[-1], base) if reached else 0
    return 0


def _quote(promo: Promotion, lines: Sequence[CartLine], running: Mapping[str, int], shipping_left: int) -> _Quote:
    eligible = tuple(line.line_id for line in lines if _in_scope(promo, line))
    if not eligible:
        return _Quote(reason="no_eligible_lines", message="no line of the cart is in its scope")
    base = sum(running[line_id] for line_id in eligible)
    floor = cents(promo.min_spend)
    if promo.kind == "threshold_tiers":
        floor = max(floor, _tiers(promo)[0][0])
    if base < floor:
        short = floor - base
        saving = _saving_at(promo, floor)
        text = f"spend {amount(short)} more on eligible items"
        text += f" to save {amount(saving)}" if saving else " to qualify"
        return _Quote(reason="below_min_spend", message=text, shortfall=short, next_saving=saving or None)
    if base == 0 and promo.kind not in ("free_shipping", "gift"):
        return _Quote(reason="no_eligible_lines", message="its eligible lines are fully discounted already")
    quote = _Quote(eligible=eligible)
    if promo.kind == "free_shipping":
        cap = promo.params.get("max_shipping")
        quote.shipping = shipping_left if cap is None else min(shipping_left, cents(cap))
    else:
        quote.discount = _saving_at(promo, base)
    if promo.kind == "threshold_tiers":
        higher = [(t, d) for t, d in _tiers(promo) if t > base]
        if higher:
            quote.shortfall, quote.next_saving = higher[0][0] - base, higher[0][1]
    if promo.budget is not None:
        left = cents(promo.budget) - cents(promo.spent)
        quote.shipping = min(quote.shipping, left)
        quote.discount = min(quote.discount, max(left - quote.shipping, 0))
    return quote


def _applied_message(promo: Promotion, quote: _Quote) -> str:
    if promo.kind == "gift":
        return f"adds {promo.params.get('quantity', 1)} x {promo.params['product']} as a gift"
    if promo.kind == "free_shipping":
        return f"saves {amount(quote.shipping)} shipping"
    text = f"saves {amount(quote.discount)} on {len(quote.eligible)} line(s)"
    if quote.shortfall is not None and quote.next_saving is not None:
        text += f"; spend {amount(quote.shortfall)} more to save {amount(quote.next_saving)}"
    return text


# --- the cart ----------------------------------------------------------------------------


@dataclass
class _State:
    running: dict[str, int]
    shipping_left: int
    line_discounts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    gifts: list[PricedLine] = field(default_factory=list)


def _outcome(cand: Candidate, *, reason: Reason | None, message: str, **extra: Any) -> RuleOutcome:
    promo = cand.promotion
    return RuleOutcome(
        code=promo.code,
        name=promo.name,
        kind=promo.kind,
        coupon_code=cand.coupon_code,
        applied=reason is None,
        reason=reason,
        message=message,
        **extra,
    )


def _not_applied(cand: Candidate, quote: _Quote) -> RuleOutcome:
    assert quote.reason is not None
    return _outcome(
        cand,
        reason=quote.reason,
        message=quote.message,
        shortfall=None if quote.shortfall is None else amount(quote.shortfall),
        next_saving=None if quote.next_saving is None else amount(quote.next_saving),
    )


def _apply(cand: Candidate, lines: Sequence[CartLine], state: _State) -> RuleOutcome:
    promo = cand.promotion
    quote = _quote(promo, lines, state.running, state.shipping_left)
    if quote.reason is not None:
        return _not_applied(cand, quote)
    shares = allocate(quote.discount, [state.running[line_id] for line_id in quote.eligible])
    for line_id, share in zip(quote.eligible, shares, strict=True):
        if share:
            state.running[line_id] -= share
            state.line_discounts.setdefault(line_id, []).append((promo.code, share))
    state.shipping_left -= quote.shipping
    if promo.kind == "gift":
        quantity = int(promo.params.get("quantity", 1))
        state.gifts.append(
            PricedLine(
                line_id=f"gift:{promo.code}",
                product=str(promo.params["product"]),
                quantity=quantity,
                unit_price=Decimal("0.00"),
                amount=Decimal("0.00"),
                discount=Decimal("0.00"),
                total=Decimal("0.00"),
                gift=True,
            )
        )
    return _outcome(
        cand,
        reason=None,
        message=_applied_message(promo, quote),
        amount=amount(quote.discount + quote.shipping),
        lines=tuple((i, amount(s)) for i, s in zip(quote.eligible, shares, strict=True) if s),
        shortfall=None if quote.shortfall is None else amount(quote.shortfall),
        next_saving=None if quote.next_saving is None else amount(quote.next_saving),
    )


def _check_lines(lines: Sequence[CartLine]) -> None:
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if line.line_id in seen:
            raise ValidationError(f"line id {line.line_id!r} appears twice", field=f"lines.{index}.line_id")
        if line.quantity < 1:
            raise ValidationError("quantity must be at least 1", field=f"lines.{index}.quantity")
        if line.unit_price < 0:
            raise ValidationError("unit price must not be negative", field=f"lines.{index}.unit_price")
        seen.add(line.line_id)


def _exclusive_winners(
    survivors: list[Candidate], lines: Sequence[CartLine], state: _State
) -> tuple[list[Candidate], dict[int, RuleOutcome]]:
    """Keep the best exclusive promotion of each stacking group; report the others."""
    groups: dict[str, list[Candidate]] = {}
    for cand in survivors:
        if cand.promotion.exclusive:
            groups.setdefault(cand.promotion.stack_group or DEFAULT_EXCLUSIVE_GROUP, []).append(cand)
    losers: dict[int, RuleOutcome] = {}
    for group, members in groups.items():
        quotes = [_quote(c.promotion, lines, state.running, state.shipping_left) for c in members]
        values = [q.discount + q.shipping if q.reason is None else -1 for q in quotes]
        # members are in priority order already, so the first of the best is the tie winner
        best = max(range(len(members)), key=lambda i: (values[i], -i))
        if values[best] < 0:
            continue  # none qualifies; each reports its own reason when applied
        winner = members[best].promotion.code
        for index, cand in enumerate(members):
            if index != best:
                text = f"exclusive group {group!r} keeps {winner}, the better offer for this cart"
                losers[id(cand)] = _outcome(cand, reason="excluded_by_exclusive", message=text, winner=winner)
    return [c for c in survivors if id(c) not in losers], losers


def price_cart(
    lines: Sequence[CartLine],
    candidates: Sequence[Candidate],
    member: MemberContext,
    *,
    now: datetime,
    shipping_fee: Decimal = Decimal("0"),
) -> PricedCart:
    """Apply the eligible candidates to the cart deterministically; see the module docstring."""
    _check_lines(lines)
    ordered_lines = sorted(lines, key=lambda line: line.line_id)
    state = _State(
        running={line.line_id: line.amount_cents for line in ordered_lines}, shipping_left=cents(shipping_fee)
    )
    ordered = sorted(candidates, key=lambda c: (-c.promotion.priority, c.promotion.code, c.coupon_code or ""))
    outcomes: dict[int, RuleOutcome] = {}
    survivors: list[Candidate] = []
    taken: set[str] = set()
    for cand in ordered:
        static = _static_reason(cand, member, now)
        if static is None and cand.promotion.code in taken:
            static = ("not_stackable", f"{cand.promotion.code} applies at most once per cart")
        if static is not None:
            outcomes[id(cand)] = _outcome(cand, reason=static[0], message=static[1])
            continue
        taken.add(cand.promotion.code)
        survivors.append(cand)
    survivors, losers = _exclusive_winners(survivors, ordered_lines, state)
    outcomes.update(losers)
    for cand in survivors:
        outcomes[id(cand)] = _apply(cand, ordered_lines, state)
    return _totals(ordered_lines, [outcomes[id(c)] for c in ordered], state, cents(shipping_fee))


def _totals(lines: Sequence[CartLine], rules: list[RuleOutcome], state: _State, shipping: int) -> PricedCart:
    priced = []
    for line in lines:
        taken = state.line_discounts.get(line.line_id, [])
        off = sum(share for _, share in taken)
        priced.append(
            PricedLine(
                line_id=line.line_id,
                product=line.product,
                quantity=line.quantity,
                unit_price=money(line.unit_price),
                amount=amount(line.amount_cents),
                discount=amount(off),
                total=amount(line.amount_cents - off),
                discounts=tuple((code, amount(share)) for code, share in taken),
            )
        )
    subtotal = sum(line.amount_cents for line in lines)
    discount = subtotal - sum(state.running.values())
    shipping_discount = shipping - state.shipping_left
    return PricedCart(
        lines=(*priced, *state.gifts),
        rules=tuple(rules),
        subtotal=amount(subtotal),
        discount=amount(discount),
        shipping_fee=amount(shipping),
        shipping_discount=amount(shipping_discount),
        total=amount(subtotal - discount + shipping - shipping_discount),
    )
