"""Tables of the recommendation registry: model versions, placements, A/B variants, events, feedback.

A placement (``home``, ``pdp_similar``, ``cart`` ...) serves one kind of list
and splits its traffic between model versions by variant; every change of its
variants is kept in ``rec_placement_history`` as the whole configuration, so a
rollback restores the previous one in one write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = [
    "RecEvent",
    "RecFeedback",
    "RecModelVersion",
    "RecPlacement",
    "RecPlacementHistory",
    "RecPlacementVariant",
]


class RecModelVersion(Base):
    """One trained (or training, or failed) model: its parameters, artefact directory and offline metrics."""

    __tablename__ = "rec_model_versions"
    __table_args__ = (CheckConstraint("status IN ('training', 'ready', 'failed', 'retired')", name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    directory: Mapped[str | None] = mapped_column(String(1024))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="training")
    error: Mapped[str | None] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecPlacement(Base):
    """Where lists are shown; its kind fixes which list it serves, its salt seeds the A/B bucketing."""

    __tablename__ = "rec_placements"
    __table_args__ = (CheckConstraint("kind IN ('member', 'similar', 'bought_together', 'session')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecPlacementVariant(Base):
    """A variant of a placement: a model version and its share of traffic in basis points (of 10,000)."""

    __tablename__ = "rec_placement_variants"
    __table_args__ = (
        UniqueConstraint("placement_id", "name"),
        CheckConstraint("share_bp >= 0 AND share_bp <= 10000", name="share_bp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("rec_placements.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str] = mapped_column(ForeignKey("rec_model_versions.id"))
    share_bp: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)


class RecPlacementHistory(Base):
    """Every configuration a placement had: the full variant list as JSON, who set it and when."""

    __tablename__ = "rec_placement_history"
    __table_args__ = (
        UniqueConstraint("placement_id", "revision"),
        CheckConstraint("action IN ('create', 'update', 'rollback')", name="action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("rec_placements.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    # for a rollback: the revision whose configuration it restored (so rolling back again walks further back)
    based_on: Mapped[int | None] = mapped_column(Integer)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecEvent(Base):
    """An impression, click or purchase of a recommended item, by unit (member or session) and variant."""

    __tablename__ = "rec_events"
    __table_args__ = (
        CheckConstraint("kind IN ('impression', 'click', 'purchase')", name="kind"),
        CheckConstraint("revenue >= 0", name="revenue"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement: Mapped[str] = mapped_column(String(64), index=True)
    variant: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(String(128))
    item_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
    request_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)


class RecFeedback(Base):
    """A member's interaction reported to serving; replayed into a model loaded later than it."""

    __tablename__ = "rec_feedback"
    __table_args__ = (CheckConstraint("weight IS NULL OR weight > 0", name="weight"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_key: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
