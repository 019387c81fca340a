"""How many points an order earns, and why: pure rule evaluation with an explanation per line and rule.

Rules
-----
- **Base rate**: ``points_per_unit`` points per currency unit paid (amounts are ``Decimal``). Without an
  enabled base rule an order earns nothing.
- **Multipliers**: by ``category`` or ``brand`` (of the line), ``campaign`` (the order was paid inside the
  rule's window, e.g. 618 or Double-11), ``member_day`` (the local day of the month or weekday, e.g. every
  18th: 会员日 double points) and the member's **tier** (the tier's benefit multiplier). Any multiplier rule may
  carry a window (``starts_at`` inclusive, ``ends_at`` exclusive); outside it the rule does not apply.
- **Combining** (program setting ``combine``): ``multiply`` takes the product of every multiplier that
  applies to a line; ``max`` takes only the largest (1 when none applies).
- **Rounding**: each line earns ``floor(amount x points_per_unit x factor)`` whole points; the order earns
  the sum of its lines. Rounding per line means a line never earns a fraction another line completes.
- **Caps**: a cap rule limits the points a member earns from orders per local ``day``, ``week`` (Monday to
  Sunday) or ``month``; the allowance is ``max_points`` less what the member already earned in that period
  (from the ledger). Several caps: the smallest allowance wins. Capped points are cut from the order total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "AppliedCap",
    "AppliedMultiplier",
    "BaseRate",
    "CapRule",
    "Combine",
    "EarningExplanation",
    "LineExplanation",
    "MultiplierRule",
    "OrderIn",
    "OrderLineIn",
    "Period",
    "RuleSet",
    "Scope",
    "TierBenefit",
    "as_utc",
    "evaluate_order",
    "expiry_for",
    "period_bounds",
]

Scope = Literal["category", "brand", "campaign", "member_day"]
Period = Literal["day", "week", "month"]
Combine = Literal["multiply", "max"]
ROUNDING = "floor per line: each line earns floor(amount x points per unit x factor); the order sums its lines"

MemberKey = Annotated[str, StringConstraints(pattern=r"^m[0-9a-f]{16}$")]
OrderKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e10"), max_digits=14, decimal_places=2)]


def as_utc(moment: datetime) -> datetime:
    """Aware as given; a naive date-time is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


AwareDatetime = Annotated[datetime, AfterValidator(as_utc)]


class OrderLineIn(BaseModel):
    """One paid line: ``amount`` is what the member paid for it (after discounts)."""

    model_config = ConfigDict(extra="forbid")

    line_id: Label | None = None
    sku: Label
    category: Label | None = None
    brand: Label | None = None
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    amount: Money


class OrderIn(BaseModel):
    """A paid order; lines without a ``line_id`` are numbered 1, 2, … in order."""

    model_config = ConfigDict(extra="forbid")

    order_key: OrderKey
    member_key: MemberKey
    paid_at: AwareDatetime
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _number_lines(self) -> OrderIn:
        for position, line in enumerate(self.lines, start=1):
            if line.line_id is None:
                line.line_id = str(position)
        ids = [line.line_id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise ValueError("line_id must be unique within the order")
        return self

    @property
    def spend(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class BaseRate:
    name: str
    points_per_unit: Decimal


@dataclass(frozen=True)
class MultiplierRule:
    name: str
    scope: Scope
    multiplier: Decimal
    match: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    day_of_month: int | None = None
    weekday: int | None = None  # 0 = Monday


@dataclass(frozen=True)
class CapRule:
    name: str
    period: Period
    max_points: int


@dataclass(frozen=True)
class TierBenefit:
    code: str
    multiplier: Decimal


@dataclass(frozen=True)
class RuleSet:
    """The enabled rules of the program, as values."""

    base: BaseRate | None
    multipliers: tuple[MultiplierRule, ...] = ()
    caps: tuple[CapRule, ...] = ()
    combine: Combine = "multiply"
    timezone: str = "Asia/Shanghai"


class AppliedMultiplier(BaseModel):
    rule: str
    scope: Literal["category", "brand", "campaign", "member_day", "tier"]
    factor: Decimal
    why: str


class LineExplanation(BaseModel):
    line_id: str
    sku: str
    quantity: int
    amount: Decimal
    base_points: Decimal
    multipliers: list[AppliedMultiplier]
    factor: Decimal
    points: int


class AppliedCap(BaseModel):
    rule: str
    period: Period
    period_start: datetime
    max_points: int
    earned_before: int
    allowed: int


class EarningExplanation(BaseModel):
    """How many points an order earns and why."""

    order_key: str
    member_key: str
    paid_at: datetime
    spend: Decimal
    base_rule: str | None
    points_per_unit: Decimal | None
    combine: Combine
    rounding: str
    tier: str | None
    lines: list[LineExplanation]
    uncapped_points: int
    caps: list[AppliedCap]
    points: int
    reasons: list[str]


def period_bounds(period: Period, moment: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The local day, week (from Monday) or month containing ``moment``, as UTC ``[start, end)``."""
    zone = ZoneInfo(timezone)
    local = as_utc(moment).astimezone(zone).date()
    if period == "day":
        first, following = local, local + timedelta(days=1)
    elif period == "week":
        first = local - timedelta(days=local.weekday())
        following = first + timedelta(days=7)
    else:
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(following, zone)


def expiry_for(paid_at: datetime, months: int, timezone: str) -> datetime | None:
    """Start of the local month after the month ``months`` months after ``paid_at`` (UTC); None if 0."""
    if months <= 0:
        return None
    zone = ZoneInfo(timezone)
    local = as_utc(paid_at).astimezone(zone)
    index = local.year * 12 + local.month - 1 + months + 1
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=zone).astimezone(UTC)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _in_window(rule: MultiplierRule, moment: datetime) -> bool:
    if rule.starts_at is not None and moment < as_utc(rule.starts_at):
        return False
    return rule.ends_at is None or moment < as_utc(rule.ends_at)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _order_wide(rule: MultiplierRule, paid_at: datetime, local: date) -> str | None:
    """Why an order-wide rule (campaign, member day) applies, or None."""
    if rule.scope == "campaign":
        return f"paid inside campaign {rule.match or rule.name}"
    if rule.day_of_month is not None and local.day == rule.day_of_month:
        return f"member day: the {rule.day_of_month}th of the month"
    if rule.weekday is not None and local.weekday() == rule.weekday:
        return f"member day: every {_WEEKDAYS[rule.weekday]}"
    return None


def _line_multipliers(
    line: OrderLineIn, rules: RuleSet, paid_at: datetime, tier: TierBenefit | None
) -> list[AppliedMultiplier]:
    local = paid_at.astimezone(ZoneInfo(rules.timezone)).date()
    found: list[AppliedMultiplier] = []
    for rule in rules.multipliers:
        if not _in_window(rule, paid_at):
            continue
        why: str | None
        if rule.scope in ("category", "brand"):
            value = line.category if rule.scope == "category" else line.brand
            why = f"{rule.scope} is {value}" if value is not None and value == rule.match else None
        else:
            why = _order_wide(rule, paid_at, local)
        if why is not None:
            found.append(AppliedMultiplier(rule=rule.name, scope=rule.scope, factor=rule.multiplier, why=why))
    if tier is not None and tier.multiplier != 1:
        found.append(
            AppliedMultiplier(rule=f"tier {tier.code}", scope="tier", factor=tier.multiplier, why="tier benefit")
        )
    return found


def _combined(applied: Sequence[AppliedMultiplier], combine: Combine) -> Decimal:
    if not applied:
        return Decimal(1)
    if combine == "max":
        return max(m.factor for m in applied)
    return math.prod((m.factor for m in applied), start=Decimal(1))


def _explain_line(
    line: OrderLineIn, rules: RuleSet, base: BaseRate, paid_at: datetime, tier: TierBenefit | None
) -> LineExplanation:
    applied = _line_multipliers(line, rules, paid_at, tier)
    factor = _combined(applied, rules.combine)
    base_points = line.amount * base.points_per_unit
    points = int((base_points * factor).to_integral_value(rounding=ROUND_FLOOR))
    return LineExplanation(
        line_id=line.line_id or "",
        sku=line.sku,
        quantity=line.quantity,
        amount=line.amount,
        base_points=base_points,
        multipliers=applied,
        factor=factor,
        points=points,
    )


def _apply_caps(
    points: int, rules: RuleSet, paid_at: datetime, earned_in: Mapping[Period, int]
) -> tuple[int, list[AppliedCap]]:
    caps: list[AppliedCap] = []
    for cap in rules.caps:
        before = earned_in.get(cap.period, 0)
        start, _end = period_bounds(cap.period, paid_at, rules.timezone)
        allowed = max(0, cap.max_points - before)
        caps.append(
            AppliedCap(
                rule=cap.name,
                period=cap.period,
                period_start=start,
                max_points=cap.max_points,
                earned_before=before,
                allowed=allowed,
            )
        )
        points = min(points, allowed)
    return points, caps


def evaluate_order(
    order: OrderIn,
    rules: RuleSet,
    *,
    tier: TierBenefit | None = None,
    earned_in: Mapping[Period, int] | None = None,
) -> EarningExplanation:
    """Evaluate ``rules`` on ``order``; ``earned_in`` is what the member already earned in each cap's period."""
    reasons: list[str] = []
    lines: list[LineExplanation] = []
    if rules.base is None:
        reasons.append("no enabled base rule: orders earn no points")
    else:
        lines = [_explain_line(line, rules, rules.base, order.paid_at, tier) for line in order.lines]
        reasons.append(f"base rule {rules.base.name}: {rules.base.points_per_unit} point(s) per currency unit")
        for line in lines:
            named = ", ".join(f"{m.rule} x{m.factor}" for m in line.multipliers) or "no multiplier"
            reasons.append(
                f"line {line.line_id} ({line.sku}): {line.amount} → {line.base_points} x {line.factor} "
                f"({named}, {rules.combine}) = {line.points} after rounding down"
            )
    uncapped = sum(line.points for line in lines)
    points, caps = _apply_caps(uncapped, rules, order.paid_at, earned_in or {})
    for cap in caps:
        reasons.append(
            f"cap {cap.rule}: {cap.max_points} per {cap.period}, {cap.earned_before} earned already, "
            f"{cap.allowed} allowed"
        )
    if points < uncapped:
        reasons.append(f"capped from {uncapped} to {points}")
    return EarningExplanation(
        order_key=order.order_key,
        member_key=order.member_key,
        paid_at=order.paid_at,
        spend=order.spend,
        base_rule=rules.base.name if rules.base else None,
        points_per_unit=rules.base.points_per_unit if rules.base else None,
        combine=rules.combine,
        rounding=ROUNDING,
        tier=tier.code if tier else None,
        lines=lines,
        uncapped_points=uncapped,
        caps=caps,
        points=points,
        reasons=reasons,
    )
