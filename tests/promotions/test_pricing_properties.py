"""Invariants of cart pricing on random carts and promotions (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from patron.promotions.pricing import Candidate, CartLine, MemberContext, PricedCart, Promotion, price_cart

NOW = datetime(2026, 6, 18, tzinfo=UTC)
CATEGORIES = ("shoes", "bags", "hats")

prices = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c) / 100)
lines = st.lists(
    st.builds(
        lambda i, price, qty, cat: CartLine(f"l{i}", f"p{i}", price, qty, cat, None),
        st.integers(0, 10_000),
        prices,
        st.integers(1, 5),
        st.sampled_from(CATEGORIES),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda line: line.line_id,
)
money_text = st.integers(min_value=1, max_value=30_000).map(lambda c: str(Decimal(c) / 100))


@st.composite
def params(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    if kind == "fixed":
        return {"amount": draw(money_text)}
    if kind == "percent":
        cap = draw(st.none() | money_text)
        return {"percent": str(draw(st.integers(1, 100))), **({"cap": cap} if cap else {})}
    if kind == "threshold_tiers":
        thresholds = sorted(draw(st.sets(st.integers(100, 100_000), min_size=1, max_size=3)))
        return {"tiers": [{"threshold": str(Decimal(t) / 100), "discount": draw(money_text)} for t in thresholds]}
    if kind == "gift":
        return {"product": "gift", "quantity": 1}
    return {}


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    found = []
    for index in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["fixed", "percent", "threshold_tiers", "free_shipping", "gift"]))
        promotion = Promotion(
            code=f"P{index}",
            name=f"promo {index}",
            kind=kind,
            params=draw(params(kind)),
            priority=draw(st.integers(-2, 2)),
            exclusive=draw(st.booleans()),
            stack_group=draw(st.sampled_from([None, "g1", "g2"])),
            categories=tuple(draw(st.sets(st.sampled_from(CATEGORIES), max_size=2))),
            min_spend=Decimal(draw(st.integers(0, 20_000))) / 100,
        )
        found.append(Candidate(promotion))
    return found


def _price(cart: list[CartLine], offers: list[Candidate], shipping: Decimal) -> PricedCart:
    return price_cart(cart, offers, MemberContext(member_key="m1"), now=NOW, shipping_fee=shipping)


@settings(max_examples=300, deadline=None)
@given(lines, candidates(), prices)
def test_line_discounts_add_up_to_each_rule_and_totals_are_never_negative(
    cart: list[CartLine], offers: list[Candidate], shipping: Decimal
) -> None:
    priced = _price(cart, offers, shipping)

    for outcome in priced.rules:
        if outcome.kind != "free_shipping":
            assert sum((amount for _, amount in outcome.lines), Decimal(0)) == outcome.amount
        assert outcome.amount >= 0
        assert outcome.applied == (outcome.reason is None)
    per_line = {pl.line_id: pl for pl in priced.lines}
    for pl in priced.lines:
        assert sum((amount for _, amount in pl.discounts), Decimal(0)) == pl.discount
        assert Decimal(0) <= pl.total == pl.amount - pl.discount
    for outcome in priced.rules:
        for line_id, amount in outcome.lines:
            assert dict(per_line[line_id].discounts)[outcome.code] == amount
    assert priced.total >= 0
    assert priced.discount == sum((pl.discount for pl in priced.lines), Decimal(0))
    assert priced.total == priced.subtotal - priced.discount + priced.shipping_fee - priced.shipping_discount
    assert 0 <= priced.shipping_discount <= priced.shipping_fee


@settings(max_examples=200, deadline=None)
@given(lines, candidates(), prices, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_lines_or_promotions(
    cart: list[CartLine], offers: list[Candidate], shipping: Decimal, rnd: Any
) -> None:
    shuffled_lines, shuffled_offers = list(cart), list(offers)
    rnd.shuffle(shuffled_lines)
    rnd.shuffle(shuffled_offers)

    assert _price(shuffled_lines, shuffled_offers, shipping) == _price(cart, offers, shipping)


@settings(max_examples=100, deadline=None)
@given(lines, candidates(), prices)
def test_repricing_is_deterministic(cart: list[CartLine], offers: list[Candidate], shipping: Decimal) -> None:
    assert _price(cart, offers, shipping) == _price(cart, offers, shipping)
