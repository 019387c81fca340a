"""Tables of the loyalty program: earning and event rules, tiers, member tier state, orders seen, jobs.

The points themselves live in the ledger (``patron.loyalty.ledger``); these
tables hold what decides how many points a member earns and which tier they
are in, and what was decided.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = [
    "EarningRule",
    "EventAward",
    "EventRule",
    "JobRun",
    "JobSchedule",
    "LoyaltyOrder",
    "MemberTier",
    "ProgramSettings",
    "SpendRecord",
    "Tier",
    "TierChange",
]

_EVENTS = "('sign_up', 'first_order', 'review', 'birthday', 'daily_check_in')"


class EarningRule(Base):
    """A base rate, a multiplier or a cap; the columns another kind uses stay null."""

    __tablename__ = "loyalty_earning_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('base', 'multiplier', 'cap')", name="kind"),
        CheckConstraint("scope IS NULL OR scope IN ('category', 'brand', 'campaign', 'member_day')", name="scope"),
        CheckConstraint("period IS NULL OR period IN ('day', 'week', 'month')", name="period"),
        CheckConstraint("kind <> 'base' OR points_per_unit > 0", name="base_fields"),
        CheckConstraint("kind <> 'multiplier' OR (scope IS NOT NULL AND multiplier > 0)", name="multiplier_fields"),
        CheckConstraint("kind <> 'cap' OR (period IS NOT NULL AND max_points >= 0)", name="cap_fields"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    points_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    scope: Mapped[str | None] = mapped_column(String(16))
    match: Mapped[str | None] = mapped_column(String(128))
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    weekday: Mapped[int | None] = mapped_column(Integer)
    period: Mapped[str | None] = mapped_column(String(8))
    max_points: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRule(Base):
    """Points for one kind of member event (one row per event)."""

    __tablename__ = "loyalty_event_rules"
    __table_args__ = (
        CheckConstraint(f"event IN {_EVENTS}", name="event"),
        CheckConstraint("points >= 0", name="points"),
        CheckConstraint("birthday_window IS NULL OR birthday_window IN ('month', 'day')", name="birthday_window"),
    )

    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    birthday_window: Mapped[str | None] = mapped_column(String(8))
    streak_days: Mapped[int | None] = mapped_column(Integer)
    streak_bonus: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventAward(Base):
    """An event that earned points; unique per member, event and period, so a once-only event pays once."""

    __tablename__ = "loyalty_event_awards"
    __table_args__ = (UniqueConstraint("member_key", "event", "period_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(16))
    period_key: Mapped[str] = mapped_column(String(160))
    day: Mapped[str] = mapped_column(String(10))  # the local day (ISO) the event happened on
    streak: Mapped[int] = mapped_column(Integer, default=1)
    points: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(255))
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgramSettings(Base):
    """The program's one row of settings (id 1)."""

    __tablename__ = "loyalty_program_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("tier_basis IN ('points', 'spend')", name="tier_basis"),
        CheckConstraint("downgrade_policy IN ('none', 'periodic', 'on_return')", name="downgrade_policy"),
        CheckConstraint("combine IN ('multiply', 'max')", name="combine"),
        CheckConstraint("tier_window_days >= 1", name="tier_window_days"),
        CheckConstraint("return_window_days >= 0", name="return_window_days"),
        CheckConstraint("expiry_months >= 0", name="expiry_months"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tier_basis: Mapped[str] = mapped_column(String(8))
    tier_window_days: Mapped[int] = mapped_column(Integer)
    downgrade_policy: Mapped[str] = mapped_column(String(16))
    combine: Mapped[str] = mapped_column(String(8))
    return_window_days: Mapped[int] = mapped_column(Integer)
    expiry_months: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tier(Base):
    """A member level: reached at ``threshold`` (points or spend over the window) with its benefits."""

    __tablename__ = "loyalty_tiers"
    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold"),
        CheckConstraint("multiplier > 0", name="multiplier"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 2), unique=True)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    coupons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MemberTier(Base):
    """A member's current tier; also the row that serializes a member's earning (its ``version`` is bumped)."""

    __tablename__ = "loyalty_member_tiers"

    member_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tier_code: Mapped[str | None] = mapped_column(String(32))
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)


class TierChange(Base):
    """One change of a member's tier, with why and the value that decided it."""

    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (
        CheckConstraint("reason IN ('upgrade', 'periodic', 'on_return')", name="reason"),
        Index("ix_loyalty_tier_changes_member_at", "member_key", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32))
    from_tier: Mapped[str | None] = mapped_column(String(32))
    to_tier: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(String(8))
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    coupons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoyaltyOrder(Base):
    """An order seen for earning: unique by order key, so an order earns once."""

    __tablename__ = "loyalty_orders"
    __table_args__ = (
        CheckConstraint("status IN ('earned', 'partially_returned', 'returned')", name="status"),
        Index("ix_loyalty_orders_member_key", "member_key"),
    )

    order_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32))
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spend: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    points: Mapped[int] = mapped_column(Integer)
    returned_spend: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    points_kept: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), default="earned")
    earn_reference: Mapped[str | None] = mapped_column(String(160))
    returns: Mapped[int] = mapped_column(Integer, default=0)
    pending_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SpendRecord(Base):
    """Signed spend for the tiers' rolling window: an order adds, a return subtracts."""

    __tablename__ = "loyalty_spend"
    __table_args__ = (Index("ix_loyalty_spend_member_at", "member_key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32))
    order_key: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobSchedule(Base):
    """When a job runs: ``hourly at :MM`` or ``daily at HH:MM`` (UTC)."""

    __tablename__ = "loyalty_job_schedules"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobRun(Base):
    """One run of a job; unique per (name, slot), so a scheduled slot runs once across processes."""

    __tablename__ = "loyalty_job_runs"
    __table_args__ = (
        UniqueConstraint("name", "slot"),
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("trigger IN ('schedule', 'manual')", name="trigger"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="running")
    stage: Mapped[str] = mapped_column(String(128), default="")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(512))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
