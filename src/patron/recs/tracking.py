"""Impressions, clicks and purchases of recommended items, recorded per placement variant.

Every event carries an idempotency key (unique in ``rec_events``); a batch is
inserted with ``ON CONFLICT DO NOTHING``, so a client may resend a batch and
each event is counted once. The export is a tidy table with one row per
(placement, variant, unit): the form an experiments engine reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Integer, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.recs.comparison import VariantStats
from patron.recs.registry_models import RecEvent

__all__ = [
    "EventBatch",
    "EventBatchResult",
    "EventIn",
    "EventKind",
    "UnitRow",
    "record_events",
    "unit_table",
    "variant_stats",
]

EventKind = Literal["impression", "click", "purchase"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
MAX_BATCH = 1_000


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class EventIn(BaseModel):
    """One event; ``idempotency_key`` makes a resend harmless, ``request_id`` ties it to a served list."""

    model_config = ConfigDict(extra="forbid")

    placement: Name
    variant: Name
    unit_id: Ident = Field(description="The member key, or a session id for anonymous traffic")
    item_id: Ident
    kind: EventKind
    revenue: float = Field(default=0.0, ge=0, le=1e9, description="Purchases only: the line's value")
    request_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    occurred_at: Annotated[datetime, AfterValidator(_utc)] | None = Field(
        default=None, description="When it happened (default: when received)"
    )
    idempotency_key: Ident


class EventBatch(BaseModel):
    """Up to 1,000 events."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventBatchResult(BaseModel):
    """How many events arrived, were recorded now, or had been recorded before (same idempotency key)."""

    received: int
    recorded: int
    duplicates: int


class UnitRow(BaseModel):
    """One unit's totals in one variant of a placement."""

    placement: str
    variant: str
    unit_id: str
    impressions: int
    clicks: int
    purchases: int
    revenue: float


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RecEvent)


def record_events(store: OperationalStore, events: Sequence[EventIn]) -> EventBatchResult:
    """Record a batch in one transaction; events whose idempotency key is known are skipped."""
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for e in events:  # a key repeated inside the batch counts once, like a resend
        rows.setdefault(
            e.idempotency_key,
            {
                **e.model_dump(exclude={"occurred_at"}),
                "revenue": e.revenue if e.kind == "purchase" else 0.0,
                "occurred_at": e.occurred_at or now,
            },
        )
    if not rows:
        return EventBatchResult(received=0, recorded=0, duplicates=0)
    statement = _insert(store.dialect).values(list(rows.values()))
    statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(RecEvent.id)
    with store.session() as sess:
        recorded = len(sess.execute(statement).all())
    return EventBatchResult(received=len(events), recorded=recorded, duplicates=len(events) - recorded)


def _count(kind: str) -> Any:
    return func.sum(case((RecEvent.kind == kind, 1), else_=0))


def _units(placement: str | None) -> Any:
    query = select(
        RecEvent.placement,
        RecEvent.variant,
        RecEvent.unit_id,
        _count("impression").label("impressions"),
        _count("click").label("clicks"),
        _count("purchase").label("purchases"),
        func.sum(RecEvent.revenue).label("revenue"),
    ).group_by(RecEvent.placement, RecEvent.variant, RecEvent.unit_id)
    if placement is not None:
        query = query.where(RecEvent.placement == placement)
    return query


def unit_table(store: OperationalStore, placement: str | None = None) -> list[UnitRow]:
    """The tidy per-unit table, ordered by placement, variant and unit."""
    query = _units(placement).order_by(RecEvent.placement, RecEvent.variant, RecEvent.unit_id)
    with store.session() as sess:
        return [
            UnitRow(
                placement=r.placement,
                variant=r.variant,
                unit_id=r.unit_id,
                impressions=int(r.impressions),
                clicks=int(r.clicks),
                purchases=int(r.purchases),
                revenue=round(float(r.revenue or 0), 2),
            )
            for r in sess.execute(query)
        ]


def variant_stats(store: OperationalStore, placement: str) -> dict[str, VariantStats]:
    """Sufficient statistics per variant; units and conversions count units that saw an impression."""
    units = _units(placement).subquery()
    exposed = units.c.impressions > 0
    query = select(
        units.c.variant,
        func.sum(case((exposed, 1), else_=0)).label("units"),
        func.sum(units.c.impressions).label("impressions"),
        func.sum(units.c.clicks).label("clicks"),
        func.sum(units.c.purchases).label("purchases"),
        func.sum(case((exposed & (units.c.purchases > 0), 1), else_=0)).cast(Integer).label("converted"),
        func.sum(units.c.revenue).label("revenue"),
    ).group_by(units.c.variant)
    with store.session() as sess:
        return {
            r.variant: VariantStats(
                variant=r.variant,
                units=int(r.units or 0),
                impressions=int(r.impressions or 0),
                clicks=int(r.clicks or 0),
                purchases=int(r.purchases or 0),
                converted_units=int(r.converted or 0),
                revenue=float(r.revenue or 0),
            )
            for r in sess.execute(query)
        }
