"""Alert rules and the alerts they fired."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = ["Alert", "AlertRule"]

_METRICS = "('gmv', 'orders', 'aov', 'buyers', 'repurchase_rate', 'new_buyers', 'returning_buyers')"


class AlertRule(Base):
    """A condition on a daily KPI; the columns a kind does not use stay null.

    The webhook secret is sealed with the master key (the delivery needs it in
    clear to sign, so it cannot be stored as a hash).
    """

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('threshold', 'pct_change', 'anomaly')", name="kind"),
        CheckConstraint(f"metric IN {_METRICS}", name="metric"),
        CheckConstraint("op IS NULL OR op IN ('<', '<=', '>', '>=')", name="op"),
        CheckConstraint("compare_to IS NULL OR compare_to IN ('previous_day', 'same_weekday')", name="compare_to"),
        CheckConstraint("direction IS NULL OR direction IN ('both', 'up', 'down')", name="direction"),
        CheckConstraint("mad_from IS NULL OR mad_from IN ('all_weekdays', 'same_weekday')", name="mad_from"),
        CheckConstraint("weeks IS NULL OR (weeks >= 2 AND weeks <= 52)", name="weeks"),
        CheckConstraint("min_weeks IS NULL OR (min_weeks >= 2 AND min_weeks <= weeks)", name="min_weeks"),
        CheckConstraint("z_threshold IS NULL OR z_threshold > 0", name="z_threshold"),
        CheckConstraint("kind <> 'threshold' OR (op IS NOT NULL AND value IS NOT NULL)", name="threshold_fields"),
        CheckConstraint(
            "kind <> 'pct_change' OR (op IS NOT NULL AND percent IS NOT NULL AND compare_to IS NOT NULL)",
            name="pct_change_fields",
        ),
        CheckConstraint(
            "kind <> 'anomaly' OR (weeks IS NOT NULL AND min_weeks IS NOT NULL AND z_threshold IS NOT NULL"
            " AND direction IS NOT NULL AND mad_from IS NOT NULL)",
            name="anomaly_fields",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    metric: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    op: Mapped[str | None] = mapped_column(String(2))
    value: Mapped[float | None] = mapped_column(Float)
    percent: Mapped[float | None] = mapped_column(Float)
    compare_to: Mapped[str | None] = mapped_column(String(16))
    weeks: Mapped[int | None] = mapped_column(Integer)
    min_weeks: Mapped[int | None] = mapped_column(Integer)
    z_threshold: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(8))
    mad_from: Mapped[str | None] = mapped_column(String(16))
    skip_festivals: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alert(Base):
    """One firing of a rule on one day; a rule fires at most once per day (unique constraint).

    Alerts outlive their rule (``rule_id`` becomes null, ``rule_name`` stays).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("rule_id", "day"),
        CheckConstraint("delivery_status IN ('none', 'pending', 'delivered', 'failed')", name="delivery_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(32), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    value: Mapped[float] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivery_status: Mapped[str] = mapped_column(String(16), default="none")
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivery_error: Mapped[str | None] = mapped_column(String(512))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
