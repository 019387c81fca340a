"""Promotion templates: create, change, list; bulk coupon codes; usage statistics.

Functions taking a ``Session`` never commit: the caller's unit of work does.
``generate_codes`` takes the store, because it commits batch by batch.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import case, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.progress import NullProgress, Progress
from patron.promotions.models import Coupon, PromotionTemplate
from patron.promotions.pricing import Promotion, cents
from patron.promotions.schemas import (
    CodeBatchRead,
    TemplateCreate,
    TemplateRead,
    TemplateStats,
    TemplateUpdate,
)

__all__ = [
    "CODE_ALPHABET",
    "create_template",
    "generate_codes",
    "get_template",
    "list_templates",
    "promotion_of",
    "template_read",
    "template_row",
    "template_stats",
    "update_template",
]

# No 0/O, 1/I/L: codes are read aloud and typed from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_BATCH = 5_000
_SHOWN = 1_000
_MONEY_FIELDS = {"min_spend": "min_spend_cents", "budget": "budget_cents"}


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive date-times; they were stored in UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _decimal(value_cents: int | None) -> Decimal | None:
    return None if value_cents is None else Decimal(value_cents) / 100


def template_read(row: PromotionTemplate) -> TemplateRead:
    """The outward form of a stored template."""
    fields = {name: getattr(row, name) for name in TemplateRead.model_fields if hasattr(row, name)}
    fields.update(min_spend=_decimal(row.min_spend_cents), budget=_decimal(row.budget_cents))
    fields["spent"] = _decimal(row.spent_cents)
    return TemplateRead.model_validate(fields)


def _validated(fields: dict[str, Any]) -> TemplateCreate:
    """Check a merged template like a new one, naming the first bad field."""
    try:
        return TemplateCreate.model_validate(fields)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in first["loc"]) or None
        if message.startswith("params") and ":" in message:
            field = message.split(":", 1)[0]
        elif message.startswith("ends_at"):
            field = "ends_at"
        raise ValidationError(message, field=field) from None


def _apply(row: PromotionTemplate, data: TemplateCreate) -> None:
    for name, value in data.model_dump(exclude={"min_spend", "budget"}).items():
        setattr(row, name, value)
    row.params = data.params
    row.min_spend_cents = cents(data.min_spend)
    row.budget_cents = None if data.budget is None else cents(data.budget)


def template_row(session: Session, code: str, *, lock: bool = False) -> PromotionTemplate:
    """The stored template with this code, or NotFoundError."""
    query = select(PromotionTemplate).where(PromotionTemplate.code == code)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFoundError(f"no promotion template {code!r}")
    return row


def create_template(session: Session, data: TemplateCreate, created_by: str) -> TemplateRead:
    """Store a new template; ConflictError when the code is taken."""
    if session.scalar(select(PromotionTemplate.id).where(PromotionTemplate.code == data.code)) is not None:
        raise ConflictError(f"a promotion template {data.code!r} exists already")
    row = PromotionTemplate(created_by=created_by[:128], used=0, spent_cents=0)
    _apply(row, data)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a promotion template {data.code!r} exists already") from exc
    return template_read(row)


def update_template(session: Session, code: str, changes: TemplateUpdate) -> TemplateRead:
    """Apply a partial change; the merged template must be valid as a whole, and budget must cover what is spent."""
    row = template_row(session, code)
    current = template_read(row).model_dump(include=set(TemplateCreate.model_fields))
    data = _validated({**current, **changes.model_dump(exclude_unset=True)})
    if data.budget is not None and cents(data.budget) < row.spent_cents:
        raise ValidationError(f"the budget cannot be below what is spent ({_decimal(row.spent_cents)})", "budget")
    if data.global_limit is not None and data.global_limit < row.used:
        raise ValidationError(f"the global limit cannot be below the uses taken ({row.used})", "global_limit")
    _apply(row, data)
    row.updated_at = utcnow()
    session.flush()
    return template_read(row)


def get_template(session: Session, code: str) -> TemplateRead:
    """One template by code."""
    return template_read(template_row(session, code))


def list_templates(session: Session, *, status: str | None = None) -> list[TemplateRead]:
    """Templates by code, optionally only those with ``status``."""
    query = select(PromotionTemplate).order_by(PromotionTemplate.code)
    if status is not None:
        query = query.where(PromotionTemplate.status == status)
    return [template_read(row) for row in session.scalars(query)]


def promotion_of(row: PromotionTemplate, member_used: int = 0) -> Promotion:
    """The pricing view of a template, with the member's use count."""
    return Promotion(
        code=row.code,
        name=row.name,
        kind=row.kind,
        params=row.params,
        priority=row.priority,
        stack_group=row.stack_group,
        exclusive=row.exclusive,
        automatic=row.automatic,
        active=row.status == "active",
        starts_at=_aware(row.starts_at),
        ends_at=_aware(row.ends_at),
        segments=tuple(row.segments),
        tiers=tuple(row.tiers),
        categories=tuple(row.categories),
        brands=tuple(row.brands),
        products=tuple(row.products),
        min_spend=Decimal(row.min_spend_cents) / 100,
        global_limit=row.global_limit,
        used=row.used,
        per_member_limit=row.per_member_limit,
        member_used=member_used,
        budget=_decimal(row.budget_cents),
        spent=Decimal(row.spent_cents) / 100,
    )


def _new_code(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _insert_ignoring_taken(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(Coupon).on_conflict_do_nothing(index_elements=["code"]), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(Coupon).on_conflict_do_nothing(index_elements=["code"]), rows)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        session.execute(insert(Coupon), rows)


def generate_codes(
    store: OperationalStore,
    template_code: str,
    count: int,
    *,
    prefix: str = "",
    length: int = 10,
    progress: Progress | None = None,
) -> CodeBatchRead:
    """Create ``count`` unassigned coupons with random codes (``secrets``, unambiguous alphabet).

    Codes are inserted in batches that skip any code already taken (the unique
    index decides), and the batch is topped up until ``count`` new codes exist.
    """
    if not 1 <= count <= 100_000:
        raise ValidationError("count must be 1 to 100000", field="count")
    progress = progress or NullProgress()
    batch = secrets.token_hex(8)
    with store.session() as session:
        template_id = template_row(session, template_code).id
    progress.stage(f"generating {count:,} codes for {template_code}", total=count)
    made = 0
    while made < count:
        wanted = min(_BATCH, count - made)
        now = utcnow()
        codes = {_new_code(prefix, length) for _ in range(wanted)}
        rows = [
            {"code": c, "template_id": template_id, "status": "issued", "batch": batch, "reason": "bulk"}
            | {"issued_at": now, "updated_at": now}
            for c in sorted(codes)
        ]
        with store.session() as session:
            _insert_ignoring_taken(session, rows)
            total = session.scalar(select(func.count()).select_from(Coupon).where(Coupon.batch == batch)) or 0
        progress.advance(total - made)
        made = total
    with store.session() as session:
        shown = list(
            session.scalars(select(Coupon.code).where(Coupon.batch == batch).order_by(Coupon.id).limit(_SHOWN))
        )
    return CodeBatchRead(template_code=template_code, batch=batch, count=made, codes=shown)


def template_stats(session: Session) -> list[TemplateStats]:
    """Per template: coupons issued and by status, uses, discount given, budget left."""

    def by_status(status: str) -> Any:
        return func.coalesce(func.sum(case((Coupon.status == status, 1), else_=0)), 0)

    counts = {
        row.template_id: row
        for row in session.execute(
            select(
                Coupon.template_id,
                func.count().label("issued"),
                by_status("reserved").label("reserved"),
                by_status("redeemed").label("redeemed"),
                by_status("released").label("released"),
            ).group_by(Coupon.template_id)
        )
    }
    stats = []
    for row in session.scalars(select(PromotionTemplate).order_by(PromotionTemplate.code)):
        found = counts.get(row.id)
        budget = _decimal(row.budget_cents)
        stats.append(
            TemplateStats(
                code=row.code,
                name=row.name,
                kind=row.kind,
                status=row.status,
                issued=found.issued if found else 0,
                reserved=found.reserved if found else 0,
                redeemed=found.redeemed if found else 0,
                released=found.released if found else 0,
                used=row.used,
                discount_given=Decimal(row.spent_cents) / 100,
                budget=budget,
                budget_left=None if row.budget_cents is None else _decimal(row.budget_cents - row.spent_cents),
            )
        )
    return stats
