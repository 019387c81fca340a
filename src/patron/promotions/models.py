"""Operational tables of promotions: templates, coupons, usage, redemptions, rewards.

Money is stored as integer cents (exact on every engine); the schemas turn it
into ``Decimal`` with two places. The counters that limits and budgets guard
(``used``, ``spent_cents``, ``stock``, per-member ``uses``) carry check
constraints, and the services change them only with conditional updates, so
concurrent writers can never push them past their limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = [
    "Coupon",
    "PromotionRedemption",
    "PromotionTemplate",
    "PromotionUsage",
    "Reward",
    "RewardExchange",
]

KINDS = "('fixed', 'percent', 'threshold_tiers', 'free_shipping', 'gift')"
COUPON_STATUSES = "('issued', 'reserved', 'redeemed', 'released', 'expired')"


class PromotionTemplate(Base):
    """A promotion: what it gives (kind + params), to whom, when, how often and how it stacks."""

    __tablename__ = "promotion_templates"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint("status IN ('active', 'paused', 'archived')", name="status"),
        CheckConstraint("min_spend_cents >= 0", name="min_spend"),
        CheckConstraint("used >= 0 AND (global_limit IS NULL OR used <= global_limit)", name="used"),
        CheckConstraint("global_limit IS NULL OR global_limit >= 1", name="global_limit"),
        CheckConstraint("per_member_limit IS NULL OR per_member_limit >= 1", name="per_member_limit"),
        CheckConstraint(
            "spent_cents >= 0 AND (budget_cents IS NULL OR spent_cents <= budget_cents)", name="spent_cents"
        ),
        CheckConstraint("budget_cents IS NULL OR budget_cents >= 0", name="budget_cents"),
        CheckConstraint("ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="window"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    segments: Mapped[list[str]] = mapped_column(JSON)
    tiers: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    brands: Mapped[list[str]] = mapped_column(JSON)
    products: Mapped[list[str]] = mapped_column(JSON)
    min_spend_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    global_limit: Mapped[int | None] = mapped_column(Integer)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    budget_cents: Mapped[int | None] = mapped_column(BigInteger)
    spent_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    stack_group: Mapped[str | None] = mapped_column(String(64))
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Coupon(Base):
    """One coupon code of a template; ``member_key`` is null for bulk codes not yet handed out."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(f"status IN {COUPON_STATUSES}", name="status"),
        CheckConstraint("discount_cents IS NULL OR discount_cents >= 0", name="discount_cents"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("promotion_templates.id", ondelete="CASCADE"), index=True)
    member_key: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="issued")
    order_reference: Mapped[str | None] = mapped_column(String(128))
    discount_cents: Mapped[int | None] = mapped_column(BigInteger)
    usage_member: Mapped[str | None] = mapped_column(String(32))
    batch: Mapped[str | None] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(256), default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromotionUsage(Base):
    """How many uses (reserved or redeemed) of a template a member holds: the per-member limit's counter."""

    __tablename__ = "promotion_usage"
    __table_args__ = (CheckConstraint("uses >= 0", name="uses"),)

    template_id: Mapped[int] = mapped_column(ForeignKey("promotion_templates.id", ondelete="CASCADE"), primary_key=True)
    member_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


AUTOMATIC_USE = "coupon_id IS NULL AND status <> 'released'"


class PromotionRedemption(Base):
    """One use of a promotion by an order: reserved, then redeemed or released.

    ``coupon_id`` is the coupon used, or null for an automatic promotion (applied
    by cart pricing without a coupon); an order holds at most one live use of an
    automatic promotion (a partial unique index).
    """

    __tablename__ = "promotion_redemptions"
    __table_args__ = (
        CheckConstraint("status IN ('reserved', 'redeemed', 'released')", name="status"),
        CheckConstraint("discount_cents >= 0", name="discount_cents"),
        Index(
            "uq_promotion_redemptions_automatic_use",
            "template_id",
            "order_reference",
            unique=True,
            sqlite_where=text(AUTOMATIC_USE),
            postgresql_where=text(AUTOMATIC_USE),
        ),
        Index("ix_promotion_redemptions_order_reference", "order_reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("promotion_templates.id", ondelete="CASCADE"), index=True)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"), index=True)
    member_key: Mapped[str | None] = mapped_column(String(32))
    order_reference: Mapped[str] = mapped_column(String(128))
    discount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reward(Base):
    """A catalog entry members buy with points: a coupon (from a template) or a gift, with optional stock."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("kind IN ('coupon', 'gift')", name="kind"),
        CheckConstraint("points_cost >= 1", name="points_cost"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
        CheckConstraint("per_member_limit IS NULL OR per_member_limit >= 1", name="per_member_limit"),
        CheckConstraint("kind <> 'coupon' OR template_id IS NOT NULL", name="coupon_template"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    points_cost: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("promotion_templates.id", ondelete="RESTRICT"))
    stock: Mapped[int | None] = mapped_column(Integer)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    exchanged: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RewardExchange(Base):
    """Points a member gave for a reward, and the coupon it produced (for coupon rewards)."""

    __tablename__ = "reward_exchanges"
    __table_args__ = (UniqueConstraint("reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"), index=True)
    member_key: Mapped[str] = mapped_column(String(32), index=True)
    points: Mapped[int] = mapped_column(Integer)
    coupon_code: Mapped[str | None] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
