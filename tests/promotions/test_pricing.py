"""Cart pricing on hand-checked carts: each kind, the reasons, stacking and allocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from patron.errors import ValidationError
from patron.promotions.pricing import (
    Candidate,
    CartLine,
    MemberContext,
    PricedCart,
    Promotion,
    RuleOutcome,
    allocate,
    money,
    price_cart,
)

NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)
D = Decimal


def promo(code: str, kind: str, params: dict[str, Any], **fields: Any) -> Candidate:
    coupon = fields.pop("coupon", None)
    return Candidate(Promotion(code=code, name=code.title(), kind=kind, params=params, **fields), coupon_code=coupon)


def line(line_id: str, price: str, qty: int = 1, **fields: Any) -> CartLine:
    return CartLine(
        line_id=line_id, product=fields.pop("product", f"p-{line_id}"), unit_price=D(price), quantity=qty, **fields
    )


def rule(cart: PricedCart, code: str) -> RuleOutcome:
    return next(r for r in cart.rules if r.code == code)


CART = [line("a", "120.00", category="shoes", brand="acme"), line("b", "60.00", 2, category="bags", brand="zen")]


def test_money_rounds_half_up() -> None:
    assert money(D("0.005")) == D("0.01")
    assert money(D("2.345")) == D("2.35")
    assert money(D("-2.345")) == D("-2.35")


def test_allocation_is_proportional_and_gives_leftover_cents_by_largest_remainder_then_position() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(1000, [300, 100]) == [750, 250]
    assert allocate(7, [5, 5, 1]) == [3, 3, 1]
    assert allocate(0, [5, 5]) == [0, 0]


def test_fixed_amount_is_spread_over_the_lines_by_amount() -> None:
    cart = price_cart(CART, [promo("F10", "fixed", {"amount": "10.00"})], MemberContext(), now=NOW)

    assert cart.subtotal == D("240.00")
    assert rule(cart, "F10").applied and rule(cart, "F10").amount == D("10.00")
    assert [(pl.line_id, pl.discount) for pl in cart.lines] == [("a", D("5.00")), ("b", D("5.00"))]
    assert cart.total == D("230.00")


def test_percentage_is_capped() -> None:
    uncapped = price_cart(CART, [promo("P15", "percent", {"percent": "15"})], MemberContext(), now=NOW)
    capped = price_cart(CART, [promo("P15", "percent", {"percent": "15", "cap": "20.00"})], MemberContext(), now=NOW)

    assert uncapped.discount == D("36.00")
    assert capped.discount == D("20.00")


def test_threshold_tiers_use_the_highest_tier_reached_and_tell_how_far_the_next_is() -> None:
    tiers = {"tiers": [{"threshold": "200", "discount": "20"}, {"threshold": "300", "discount": "40"}]}
    cart = price_cart(CART, [promo("MJ", "threshold_tiers", tiers)], MemberContext(), now=NOW)

    outcome = rule(cart, "MJ")
    assert outcome.applied and outcome.amount == D("20.00")
    assert (outcome.shortfall, outcome.next_saving) == (D("60.00"), D("40.00"))
    assert "spend 60.00 more to save 40.00" in outcome.message


def test_below_the_lowest_tier_is_below_min_spend_with_the_upsell() -> None:
    tiers = {"tiers": [{"threshold": "300", "discount": "40"}]}
    cart = price_cart(CART, [promo("MJ", "threshold_tiers", tiers)], MemberContext(), now=NOW)

    outcome = rule(cart, "MJ")
    assert (outcome.applied, outcome.reason) == (False, "below_min_spend")
    assert (outcome.shortfall, outcome.next_saving) == (D("60.00"), D("40.00"))
    assert cart.discount == D("0.00")


def test_free_shipping_zeroes_the_fee_and_gift_adds_a_zero_priced_line() -> None:
    candidates = [promo("SHIP", "free_shipping", {}), promo("GIFT", "gift", {"product": "tote", "quantity": 1})]
    cart = price_cart(CART, candidates, MemberContext(), now=NOW, shipping_fee=D("8.50"))

    assert cart.shipping_discount == D("8.50")
    assert cart.total == D("240.00")
    gift = cart.lines[-1]
    assert (gift.line_id, gift.product, gift.gift, gift.total) == ("gift:GIFT", "tote", True, D("0.00"))


def test_scope_restricts_the_eligible_lines() -> None:
    cart = price_cart(
        CART, [promo("BAGS", "percent", {"percent": "10"}, categories=("bags",))], MemberContext(), now=NOW
    )
    nothing = price_cart(
        CART, [promo("HATS", "fixed", {"amount": "5"}, categories=("hats",))], MemberContext(), now=NOW
    )

    assert [(pl.line_id, pl.discount) for pl in cart.lines] == [("a", D("0.00")), ("b", D("12.00"))]
    assert rule(nothing, "HATS").reason == "no_eligible_lines"


@pytest.mark.parametrize(
    ("fields", "member", "reason"),
    [
        ({"starts_at": NOW + timedelta(days=1)}, MemberContext(), "not_started"),
        ({"ends_at": NOW}, MemberContext(), "expired"),
        ({"segments": ("champions",)}, MemberContext(segment="at_risk"), "audience_mismatch"),
        ({"tiers": ("gold",)}, MemberContext(tier="silver"), "audience_mismatch"),
        ({"global_limit": 5, "used": 5}, MemberContext(), "limit_reached"),
        ({"per_member_limit": 1, "member_used": 1}, MemberContext(member_key="m1"), "limit_reached"),
        ({"budget": D("100"), "spent": D("100")}, MemberContext(), "budget_exhausted"),
        ({"min_spend": D("300")}, MemberContext(), "below_min_spend"),
        ({"active": False}, MemberContext(), "inactive"),
    ],
)
def test_each_reason_is_reported(fields: dict[str, Any], member: MemberContext, reason: str) -> None:
    cart = price_cart(CART, [promo("X", "fixed", {"amount": "10"}, **fields)], member, now=NOW)

    outcome = rule(cart, "X")
    assert (outcome.applied, outcome.reason) == (False, reason)
    assert outcome.message
    assert cart.discount == D("0.00")


def test_the_audience_matches_when_segment_and_tier_fit() -> None:
    candidate = promo("VIP", "fixed", {"amount": "10"}, segments=("champions",), tiers=("gold",))
    cart = price_cart(CART, [candidate], MemberContext("m1", tier="gold", segment="champions"), now=NOW)

    assert rule(cart, "VIP").applied


def test_a_budget_caps_the_discount_at_what_is_left() -> None:
    cart = price_cart(
        CART, [promo("B", "fixed", {"amount": "50"}, budget=D("100"), spent=D("70"))], MemberContext(), now=NOW
    )

    assert rule(cart, "B").amount == D("30.00")


def test_an_exclusive_group_keeps_the_best_offer_and_names_it() -> None:
    candidates = [
        promo("SMALL", "fixed", {"amount": "10"}, exclusive=True, stack_group="vip", priority=9),
        promo("BIG", "percent", {"percent": "20"}, exclusive=True, stack_group="vip"),
    ]
    cart = price_cart(CART, candidates, MemberContext(), now=NOW)

    assert rule(cart, "BIG").applied and rule(cart, "BIG").amount == D("48.00")
    loser = rule(cart, "SMALL")
    assert (loser.reason, loser.winner) == ("excluded_by_exclusive", "BIG")
    assert "BIG" in loser.message


def test_exclusive_ties_go_to_priority_then_code() -> None:
    by_priority = price_cart(
        CART,
        [
            promo("A10", "fixed", {"amount": "10"}, exclusive=True),
            promo("Z10", "fixed", {"amount": "10"}, exclusive=True, priority=1),
        ],
        MemberContext(),
        now=NOW,
    )
    by_code = price_cart(
        CART,
        [
            promo("Z10", "fixed", {"amount": "10"}, exclusive=True),
            promo("A10", "fixed", {"amount": "10"}, exclusive=True),
        ],
        MemberContext(),
        now=NOW,
    )

    assert rule(by_priority, "Z10").applied and rule(by_priority, "A10").winner == "Z10"
    assert rule(by_code, "A10").applied and rule(by_code, "Z10").winner == "A10"


def test_stackable_promotions_apply_in_priority_order_on_the_running_subtotal() -> None:
    candidates = [
        promo("PCT", "percent", {"percent": "10"}, priority=1),
        promo("FIX", "fixed", {"amount": "40"}, priority=5),
    ]
    cart = price_cart(CART, candidates, MemberContext(), now=NOW)

    assert rule(cart, "FIX").amount == D("40.00")
    assert rule(cart, "PCT").amount == D("20.00")  # 10% of 200, what FIX left
    assert [r.code for r in cart.rules] == ["FIX", "PCT"]
    assert cart.total == D("180.00")


def test_two_coupons_of_one_promotion_are_not_stackable() -> None:
    candidates = [
        promo("C", "fixed", {"amount": "5"}, coupon="AAA"),
        promo("C", "fixed", {"amount": "5"}, coupon="BBB"),
    ]
    cart = price_cart(CART, candidates, MemberContext(), now=NOW)

    assert [(r.coupon_code, r.reason) for r in cart.rules] == [("AAA", None), ("BBB", "not_stackable")]


def test_a_discount_never_exceeds_the_line_amounts() -> None:
    cart = price_cart([line("a", "3.00")], [promo("F", "fixed", {"amount": "50"})], MemberContext(), now=NOW)

    assert (cart.discount, cart.total, rule(cart, "F").amount) == (D("3.00"), D("0.00"), D("3.00"))


def test_duplicate_line_ids_are_refused_naming_the_line() -> None:
    with pytest.raises(ValidationError) as caught:
        price_cart([line("a", "1"), line("a", "2")], [], MemberContext(), now=NOW)

    assert caught.value.field == "lines.1.line_id"
