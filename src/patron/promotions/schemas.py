"""Outward types of promotions: templates, coupons, carts, rewards.

Money travels as decimal text with two places (``"19.90"``) and is accepted as
a number or text with at most two decimal places. A template's ``params``
depend on its ``kind``:

=============== =============================================================
kind            params
=============== =============================================================
fixed           ``amount``
percent         ``percent`` (0 < p <= 100), ``cap`` (optional)
threshold_tiers ``tiers``: ``[{threshold, discount}, ...]``, thresholds rising
free_shipping   ``max_shipping`` (optional cap on the shipping saved)
gift            ``product``, ``quantity`` (1)
=============== =============================================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from patron.promotions.params import check_params

__all__ = [
    "CartLineIn",
    "CartRequest",
    "CheckoutRead",
    "CheckoutRequest",
    "CodeBatchRead",
    "CodesRequest",
    "CouponRead",
    "CouponStatus",
    "ExchangeRead",
    "ExchangeRequest",
    "IssueRequest",
    "Kind",
    "Money",
    "OrderPromotionsRead",
    "OrderRequest",
    "PricedCartRead",
    "PricedLineRead",
    "PromotionUseRead",
    "RedeemRequest",
    "ReleaseRequest",
    "ReserveRequest",
    "RewardCreate",
    "RewardRead",
    "RewardUpdate",
    "RuleOutcomeRead",
    "TemplateCreate",
    "TemplateRead",
    "TemplateStats",
    "TemplateUpdate",
    "check_params",
]

Kind = Literal["fixed", "percent", "threshold_tiers", "free_shipping", "gift"]
CouponStatus = Literal["issued", "reserved", "redeemed", "released", "expired"]
TemplateStatus = Literal["active", "paused", "archived"]
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
CouponCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,40}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MemberKey = Annotated[str, StringConstraints(pattern=r"^m[0-9a-f]{16}$")]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive date-times; they were stored in UTC. Naive input is read as UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _TemplateFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: Kind
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)  # a kind may need some
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    segments: list[Label] = Field(default_factory=list, max_length=20)
    tiers: list[Label] = Field(default_factory=list, max_length=20)
    categories: list[Label] = Field(default_factory=list, max_length=200)
    brands: list[Label] = Field(default_factory=list, max_length=200)
    products: list[Label] = Field(default_factory=list, max_length=1000)
    min_spend: Money = Decimal("0")
    automatic: bool = False
    global_limit: Annotated[int, Field(ge=1)] | None = None
    per_member_limit: Annotated[int, Field(ge=1)] | None = None
    budget: Money | None = None
    stack_group: Label | None = None
    exclusive: bool = False
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    status: TemplateStatus = "active"

    @field_validator("params")
    @classmethod
    def _params_fit_kind(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        return params if kind is None else check_params(kind, params)

    @model_validator(mode="after")
    def _window(self) -> _TemplateFields:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TemplateCreate(_TemplateFields):
    """A new promotion template; ``code`` is its unique handle."""

    code: Code


class TemplateUpdate(BaseModel):
    """A partial change; the merged template is validated as a whole. ``code`` and ``kind`` stay."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    params: dict[str, Any] | None = None
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    segments: list[Label] | None = None
    tiers: list[Label] | None = None
    categories: list[Label] | None = None
    brands: list[Label] | None = None
    products: list[Label] | None = None
    min_spend: Money | None = None
    automatic: bool | None = None
    global_limit: Annotated[int, Field(ge=1)] | None = None
    per_member_limit: Annotated[int, Field(ge=1)] | None = None
    budget: Money | None = None
    stack_group: Label | None = None
    exclusive: bool | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    status: TemplateStatus | None = None


class TemplateRead(_TemplateFields):
    """A stored template with its counters."""

    model_config = ConfigDict(extra="ignore")

    id: int
    code: str
    used: int
    spent: Money
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CodesRequest(BaseModel):
    """Bulk code generation: ``count`` new unassigned coupons of a template."""

    model_config = ConfigDict(extra="forbid")
    count: Annotated[int, Field(ge=1, le=100_000)]
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{0,8}$")] = ""
    length: Annotated[int, Field(ge=8, le=24)] = 10


class CodeBatchRead(BaseModel):
    """A generated batch; ``codes`` holds at most the first 1,000 (all are in the store)."""

    template_code: str
    batch: str
    count: int
    codes: list[str]


class CouponRead(BaseModel):
    """A coupon and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    template_code: str
    member_key: str | None
    status: CouponStatus
    order_reference: str | None
    discount: Money | None
    reason: str
    issued_at: UtcDatetime
    updated_at: UtcDatetime


class IssueRequest(BaseModel):
    """Hand a new coupon of a template to a member."""

    model_config = ConfigDict(extra="forbid")
    template_code: Code
    member_key: MemberKey
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] = ""


class ReserveRequest(BaseModel):
    """Hold a coupon for an order: the discount it gave (from cart pricing) counts against limits and budget."""

    model_config = ConfigDict(extra="forbid")
    order_reference: Reference
    discount: Money
    member_key: MemberKey | None = None


class RedeemRequest(BaseModel):
    """The order was paid: the reserved coupon is used for good."""

    model_config = ConfigDict(extra="forbid")
    order_reference: Reference


class ReleaseRequest(BaseModel):
    """The order was cancelled: the coupon returns to the member and the use is given back."""

    model_config = ConfigDict(extra="forbid")
    order_reference: Reference


class CartLineIn(BaseModel):
    """One cart line."""

    model_config = ConfigDict(extra="forbid")
    line_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    product: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    brand: Annotated[str, StringConstraints(max_length=64)] | None = None
    unit_price: Money
    quantity: Annotated[int, Field(ge=1, le=10_000)]


def _unique_line_ids(lines: list[CartLineIn]) -> list[CartLineIn]:
    ids = [line.line_id for line in lines]
    if len(set(ids)) != len(ids):
        raise ValueError("line ids must be unique within a cart")
    return lines


class CartRequest(BaseModel):
    """A cart to price: lines, the member (tier and segment looked up when not given), coupon codes, shipping."""

    model_config = ConfigDict(extra="forbid")
    lines: Annotated[list[CartLineIn], Field(min_length=1, max_length=500)]
    member_key: MemberKey | None = None
    tier: Label | None = None
    segment: Label | None = None
    coupons: Annotated[list[CouponCode], Field(max_length=20)] = Field(default_factory=list)
    shipping_fee: Money = Decimal("0")
    now: UtcDatetime | None = None

    @field_validator("lines")
    @classmethod
    def _unique_ids(cls, lines: list[CartLineIn]) -> list[CartLineIn]:
        return _unique_line_ids(lines)


class CheckoutRequest(BaseModel):
    """An order placed from a cart: priced now, its promotions' uses held for ``order_reference``.

    Unlike :class:`CartRequest` it takes no tier, segment or pricing time: those are
    the member's own and the present, so a checkout cannot claim an audience or a window.
    """

    model_config = ConfigDict(extra="forbid")
    order_reference: Reference
    lines: Annotated[list[CartLineIn], Field(min_length=1, max_length=500)]
    member_key: MemberKey | None = None
    coupons: Annotated[list[CouponCode], Field(max_length=20)] = Field(default_factory=list)
    shipping_fee: Money = Decimal("0")

    @field_validator("lines")
    @classmethod
    def _unique_ids(cls, lines: list[CartLineIn]) -> list[CartLineIn]:
        return _unique_line_ids(lines)


class OrderRequest(BaseModel):
    """An order, by its reference: paid (its promotions used for good) or cancelled (given back)."""

    model_config = ConfigDict(extra="forbid")
    order_reference: Reference


class PromotionUseRead(BaseModel):
    """One promotion an order uses: through a coupon, or automatic (``coupon_code`` null)."""

    template_code: str
    coupon_code: str | None
    member_key: str | None
    discount: Money
    status: Literal["reserved", "redeemed", "released"]


class OrderPromotionsRead(BaseModel):
    """The promotions an order uses and where each stands."""

    order_reference: str
    uses: list[PromotionUseRead]


class PricedLineRead(BaseModel):
    """A line after discounts."""

    line_id: str
    product: str
    quantity: int
    unit_price: Money
    amount: Money
    discount: Money
    total: Money
    gift: bool
    discounts: dict[str, Money]


class RuleOutcomeRead(BaseModel):
    """Whether a promotion applied; when not, the reason code and a message."""

    code: str
    name: str
    kind: str
    coupon_code: str | None
    applied: bool
    reason: str | None
    message: str
    amount: Money
    lines: dict[str, Money]
    shortfall: Money | None
    next_saving: Money | None
    winner: str | None


class PricedCartRead(BaseModel):
    """The priced cart: every line, every rule, totals, and the member context used."""

    member_key: str | None
    tier: str | None
    segment: str | None
    priced_at: UtcDatetime
    lines: list[PricedLineRead]
    rules: list[RuleOutcomeRead]
    subtotal: Money
    discount: Money
    shipping_fee: Money
    shipping_discount: Money
    total: Money


class CheckoutRead(BaseModel):
    """A placed order's priced cart and the promotion uses held for it."""

    order_reference: str
    cart: PricedCartRead
    uses: list[PromotionUseRead]


class TemplateStats(BaseModel):
    """Per-template usage: coupons by status, discount given and budget left."""

    code: str
    name: str
    kind: str
    status: str
    issued: int
    reserved: int
    redeemed: int
    released: int
    used: int
    discount_given: Money
    budget: Money | None
    budget_left: Money | None


class RewardCreate(BaseModel):
    """A catalog entry: a coupon of ``template_code`` or a gift, for ``points_cost`` points."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: Literal["coupon", "gift"]
    points_cost: Annotated[int, Field(ge=1, le=100_000_000)]
    template_code: Code | None = None
    stock: Annotated[int, Field(ge=0)] | None = None
    per_member_limit: Annotated[int, Field(ge=1)] | None = None
    active: bool = True

    @model_validator(mode="after")
    def _template_for_coupons(self) -> RewardCreate:
        if self.kind == "coupon" and self.template_code is None:
            raise ValueError("template_code: a coupon reward needs the template its coupons come from")
        if self.kind == "gift" and self.template_code is not None:
            raise ValueError("template_code: a gift reward has no template")
        return self


class RewardUpdate(BaseModel):
    """A partial change of a reward."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    points_cost: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    stock: Annotated[int, Field(ge=0)] | None = None
    per_member_limit: Annotated[int, Field(ge=1)] | None = None
    active: bool | None = None


class RewardRead(BaseModel):
    """A catalog entry with its stock and how often it was exchanged."""

    id: int
    name: str
    kind: str
    points_cost: int
    template_code: str | None
    stock: int | None
    per_member_limit: int | None
    active: bool
    exchanged: int
    created_at: UtcDatetime


class ExchangeRequest(BaseModel):
    """A member spends points on a reward."""

    model_config = ConfigDict(extra="forbid")
    member_key: MemberKey


class ExchangeRead(BaseModel):
    """A completed exchange: the points spent and the coupon it produced (for coupon rewards)."""

    id: int
    reward_id: int
    reward_name: str
    member_key: str
    points: int
    coupon_code: str | None
    reference: str
    stock_left: int | None
    created_at: UtcDatetime
