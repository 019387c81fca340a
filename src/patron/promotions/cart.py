"""Values of cart pricing: lines, the member, promotions, outcomes, money helpers.

Money is ``Decimal`` with two places, rounded half up; :func:`allocate` splits
cents by largest remainder. See :mod:`patron.promotions.pricing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

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
    "amount",
    "cents",
    "money",
]

Reason = Literal[
    "inactive",
    "not_started",
    "expired",
    "audience_mismatch",
    "coupon_unavailable",
    "not_stackable",
    "limit_reached",
    "budget_exhausted",
    "no_eligible_lines",
    "below_min_spend",
    "excluded_by_exclusive",
]
DEFAULT_EXCLUSIVE_GROUP = "exclusive"
CENT = Decimal("0.01")


def money(value: Decimal | int | str) -> Decimal:
    """``value`` as money: two places, rounded half up."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def cents(value: Decimal | int | str) -> int:
    """``value`` in whole cents (rounded half up)."""
    return int(money(value) * 100)


def amount(value_cents: int) -> Decimal:
    """Whole cents as money."""
    return (Decimal(value_cents) / 100).quantize(CENT)


@dataclass(frozen=True)
class CartLine:
    """One line of a cart; ``amount`` is unit price times quantity, rounded to cents."""

    line_id: str
    product: str
    unit_price: Decimal
    quantity: int
    category: str | None = None
    brand: str | None = None

    @property
    def amount_cents(self) -> int:
        return cents(self.unit_price * self.quantity)


@dataclass(frozen=True)
class MemberContext:
    """Who is buying: their key, loyalty tier and RFM segment (each may be unknown)."""

    member_key: str | None = None
    tier: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class Promotion:
    """A promotion as pricing sees it, with its usage counters at pricing time."""

    code: str
    name: str
    kind: str
    params: Mapping[str, Any]
    priority: int = 0
    stack_group: str | None = None
    exclusive: bool = False
    automatic: bool = True
    active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    segments: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    min_spend: Decimal = Decimal("0")
    global_limit: int | None = None
    used: int = 0
    per_member_limit: int | None = None
    member_used: int = 0
    budget: Decimal | None = None
    spent: Decimal = Decimal("0")


@dataclass(frozen=True)
class Candidate:
    """A promotion offered to the cart: automatic, or through ``coupon_code``.

    ``unavailable`` explains why the coupon itself cannot be used (already
    redeemed, someone else's ...); pricing then reports ``coupon_unavailable``.
    """

    promotion: Promotion
    coupon_code: str | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """What one candidate did: applied with an amount, or not, with a reason code and message."""

    code: str
    name: str
    kind: str
    coupon_code: str | None
    applied: bool
    reason: Reason | None
    message: str
    amount: Decimal = Decimal("0.00")
    lines: tuple[tuple[str, Decimal], ...] = ()
    shortfall: Decimal | None = None
    next_saving: Decimal | None = None
    winner: str | None = None


@dataclass(frozen=True)
class PricedLine:
    """A line after discounts; ``discounts`` lists (promotion code, amount) in the order they applied."""

    line_id: str
    product: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    discount: Decimal
    total: Decimal
    gift: bool = False
    discounts: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class PricedCart:
    """The priced cart: lines (by line id, gifts last), every rule's outcome, and totals."""

    lines: tuple[PricedLine, ...]
    rules: tuple[RuleOutcome, ...]
    subtotal: Decimal
    discount: Decimal
    shipping_fee: Decimal
    shipping_discount: Decimal
    total: Decimal


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` cents in proportion to ``weights``: largest remainder, ties by position."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares
