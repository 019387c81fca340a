"""Earning rules and program settings: validated CRUD, and the enabled rules as values for evaluation.

An earning rule is flat: ``name``, ``kind`` and the fields of its kind; a field of another kind is refused.

========== =====================================================================================
kind       fields
========== =====================================================================================
base       ``points_per_unit`` (> 0); at most one base rule is enabled
multiplier ``scope`` (category, brand, campaign, member_day), ``multiplier`` (> 0, ≤ 100);
           category/brand: ``match`` (the line's category or brand); campaign: ``starts_at`` and
           ``ends_at`` (``match`` an optional label such as 618); member_day: ``day_of_month``
           (1-31) or ``weekday`` (0 = Monday); any multiplier may have a window
cap        ``period`` (day, week, month), ``max_points`` (≥ 0)
========== =====================================================================================
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.loyalty.earning import (
    AwareDatetime,
    BaseRate,
    CapRule,
    MultiplierRule,
    Period,
    RuleSet,
    Scope,
)
from patron.loyalty.program_models import EarningRule, ProgramSettings
from patron.loyalty.tiers import DEFAULT_SETTINGS, Basis, Downgrade, ProgramSettingsRead, program_settings

__all__ = [
    "EarningRuleCreate",
    "EarningRuleRead",
    "EarningRuleUpdate",
    "ProgramSettingsUpdate",
    "create_rule",
    "delete_rule",
    "list_rules",
    "load_rules",
    "update_rule",
    "update_settings",
]

Kind = Literal["base", "multiplier", "cap"]
RuleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
PerUnit = Annotated[Decimal, Field(gt=0, le=10_000, max_digits=12, decimal_places=4)]
Factor = Annotated[Decimal, Field(gt=0, le=100, max_digits=8, decimal_places=4)]
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "base": ("points_per_unit",),
    "multiplier": ("scope", "match", "multiplier", "starts_at", "ends_at", "day_of_month", "weekday"),
    "cap": ("period", "max_points"),
}
_OPTIONAL = ("match", "starts_at", "ends_at", "day_of_month", "weekday")


class EarningRuleCreate(BaseModel):
    """A new rule; its kind's fields are required (see the module's table), the others refused."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName
    kind: Kind
    enabled: bool = True
    points_per_unit: PerUnit | None = None
    scope: Scope | None = None
    match: RuleName | None = None
    multiplier: Factor | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    day_of_month: Annotated[int, Field(ge=1, le=31)] | None = None
    weekday: Annotated[int, Field(ge=0, le=6)] | None = None
    period: Period | None = None
    max_points: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = None


class EarningRuleUpdate(BaseModel):
    """A partial change; the result is checked like a new rule (``null`` clears an optional field)."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName | None = None
    enabled: bool | None = None
    points_per_unit: PerUnit | None = None
    scope: Scope | None = None
    match: RuleName | None = None
    multiplier: Factor | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    day_of_month: Annotated[int, Field(ge=1, le=31)] | None = None
    weekday: Annotated[int, Field(ge=0, le=6)] | None = None
    period: Period | None = None
    max_points: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = None


class EarningRuleRead(EarningRuleCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class ProgramSettingsUpdate(BaseModel):
    """A partial change of the program's settings."""

    model_config = ConfigDict(extra="forbid")

    tier_basis: Basis | None = None
    tier_window_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    downgrade_policy: Downgrade | None = None
    combine: Literal["multiply", "max"] | None = None
    return_window_days: Annotated[int, Field(ge=0, le=365)] | None = None
    expiry_months: Annotated[int, Field(ge=0, le=120)] | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


def _require(values: dict[str, Any], name: str, why: str) -> None:
    if values.get(name) is None:
        raise ValidationError(why, field=name)


def _check_multiplier(values: dict[str, Any]) -> None:
    _require(values, "scope", "a multiplier rule needs scope")
    _require(values, "multiplier", "a multiplier rule needs multiplier")
    scope = values["scope"]
    if scope in ("category", "brand"):
        _require(values, "match", f"a {scope} multiplier needs match (the {scope} it applies to)")
    if scope == "campaign":
        _require(values, "starts_at", "a campaign multiplier needs starts_at")
        _require(values, "ends_at", "a campaign multiplier needs ends_at")
    for name in ("day_of_month", "weekday"):
        if scope != "member_day" and values.get(name) is not None:
            raise ValidationError(f"{name} applies only to member_day multipliers", field=name)
    if scope == "member_day" and (values.get("day_of_month") is None) == (values.get("weekday") is None):
        raise ValidationError(
            "a member_day multiplier needs day_of_month or weekday (one of them)", field="day_of_month"
        )
    if values.get("starts_at") and values.get("ends_at") and values["starts_at"] >= values["ends_at"]:
        raise ValidationError("ends_at must be after starts_at", field="ends_at")


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """Check a whole rule, naming the first bad field."""
    kind = values["kind"]
    for other, fields in KIND_FIELDS.items():
        for name in fields if other != kind else ():
            if values.get(name) is not None and name not in KIND_FIELDS[kind]:
                raise ValidationError(f"{name} does not apply to {kind} rules", field=name)
    if kind == "base":
        _require(values, "points_per_unit", "a base rule needs points_per_unit")
    elif kind == "multiplier":
        _check_multiplier(values)
    else:
        _require(values, "period", "a cap rule needs period")
        _require(values, "max_points", "a cap rule needs max_points")
    return values


def _one_base(session: Session, rule: EarningRule) -> None:
    if rule.kind == "base" and rule.enabled:
        other = session.scalar(
            select(EarningRule.name).where(
                EarningRule.kind == "base", EarningRule.enabled.is_(True), EarningRule.id != (rule.id or -1)
            )
        )
        if other is not None:
            raise ConflictError(f"base rule {other!r} is enabled already; disable it first")


def _name_free(session: Session, name: str, rule_id: int | None) -> None:
    found = session.scalar(select(EarningRule.id).where(EarningRule.name == name))
    if found is not None and found != rule_id:
        raise ConflictError(f"an earning rule named {name!r} exists already")


def create_rule(store: OperationalStore, data: EarningRuleCreate, actor: str) -> EarningRuleRead:
    """Store a validated rule."""
    values = _checked(data.model_dump())
    with store.session() as session:
        _name_free(session, data.name, None)
        rule = EarningRule(**values, created_by=actor[:128])
        _one_base(session, rule)
        session.add(rule)
        session.flush()
        return EarningRuleRead.model_validate(rule)


def list_rules(session: Session) -> list[EarningRuleRead]:
    """Every earning rule, oldest first."""
    return [EarningRuleRead.model_validate(r) for r in session.scalars(select(EarningRule).order_by(EarningRule.id))]


def _rule(session: Session, rule_id: int) -> EarningRule:
    rule = session.get(EarningRule, rule_id)
    if rule is None:
        raise NotFoundError(f"no earning rule {rule_id}")
    return rule


def update_rule(store: OperationalStore, rule_id: int, changes: EarningRuleUpdate) -> EarningRuleRead:
    """Apply a partial change; the resulting rule must be valid as a whole."""
    with store.session() as session:
        rule = _rule(session, rule_id)
        current = {name: getattr(rule, name) for name in EarningRuleCreate.model_fields}
        given = changes.model_dump(exclude_unset=True)
        for name in ("name", "enabled"):
            if name in given and given[name] is None:
                raise ValidationError(f"{name} cannot be null", field=name)
        try:
            merged = EarningRuleCreate.model_validate({**current, **given})
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            raise ValidationError(str(first["msg"]), field=".".join(map(str, first["loc"]))) from None
        values = _checked(merged.model_dump())
        _name_free(session, merged.name, rule_id)
        for name, value in values.items():
            setattr(rule, name, value)
        rule.updated_at = utcnow()
        _one_base(session, rule)
        session.flush()
        return EarningRuleRead.model_validate(rule)


def delete_rule(store: OperationalStore, rule_id: int) -> EarningRuleRead:
    """Delete a rule; orders keep the explanation they were earned with."""
    with store.session() as session:
        rule = _rule(session, rule_id)
        gone = EarningRuleRead.model_validate(rule)
        session.delete(rule)
        return gone


def load_rules(session: Session, settings: ProgramSettingsRead) -> RuleSet:
    """The enabled rules as values for :func:`patron.loyalty.earning.evaluate_order`."""
    rules = list(session.scalars(select(EarningRule).where(EarningRule.enabled.is_(True)).order_by(EarningRule.id)))
    base = next((BaseRate(r.name, r.points_per_unit) for r in rules if r.kind == "base" and r.points_per_unit), None)
    multipliers = tuple(
        MultiplierRule(
            name=r.name,
            scope=r.scope,  # type: ignore[arg-type]  # constrained by the table's check
            multiplier=r.multiplier or Decimal(1),
            match=r.match,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            day_of_month=r.day_of_month,
            weekday=r.weekday,
        )
        for r in rules
        if r.kind == "multiplier"
    )
    caps = tuple(
        CapRule(r.name, r.period, r.max_points)  # type: ignore[arg-type]
        for r in rules
        if r.kind == "cap" and r.period and r.max_points is not None
    )
    return RuleSet(base, multipliers, caps, settings.combine, settings.timezone)


def update_settings(store: OperationalStore, changes: ProgramSettingsUpdate, actor: str) -> ProgramSettingsRead:
    """Change the program's settings; the time zone must be an IANA name such as Asia/Shanghai."""
    given = changes.model_dump(exclude_none=True)
    if "timezone" in given:
        try:
            ZoneInfo(given["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {given['timezone']!r}", field="timezone") from None
    with store.session() as session:
        row = session.get(ProgramSettings, 1)
        if row is None:
            row = ProgramSettings(id=1, **DEFAULT_SETTINGS)
            session.add(row)
        for name, value in given.items():
            setattr(row, name, value)
        row.updated_by, row.updated_at = actor[:128], utcnow()
        session.flush()
        return program_settings(session)
