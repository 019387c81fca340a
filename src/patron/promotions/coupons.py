"""Coupons: issue to a member, reserve at order placement, redeem at payment, release on cancellation.

Every function but :func:`expire_coupons` takes a ``Session`` and never
commits. Limits and budgets are enforced by conditional updates (``... WHERE
used < global_limit``): the row a write changes is locked until its
transaction ends, so concurrent reservations can never take more uses or spend
more budget than allowed. Rows are always touched in one order (coupon,
template, member usage) so writers never deadlock. :func:`take_use` and
:func:`give_back_use` are those counter changes on their own, shared with the
uses of automatic promotions (:mod:`patron.promotions.orders`). :func:`write_once`
runs any write under an idempotency key. :func:`expire_coupons` (a scheduled
job) marks the unused coupons of ended promotions ``expired``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.db.idempotency import run_idempotent
from patron.errors import ConflictError, NotFoundError
from patron.promotions.models import Coupon, PromotionRedemption, PromotionTemplate, PromotionUsage
from patron.promotions.pricing import cents
from patron.promotions.schemas import CouponRead
from patron.promotions.templates import _new_code, template_row

__all__ = [
    "coupon_read",
    "coupon_row",
    "expire_coupons",
    "give_back_use",
    "issue_coupon",
    "member_coupons",
    "redeem_coupon",
    "release_coupon",
    "reserve_coupon",
    "take_use",
    "window_problem",
    "write_once",
]

_USABLE = ("issued", "released")


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive date-times; they were stored in UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def window_problem(template: PromotionTemplate, now: datetime) -> str | None:
    """Why the template cannot be used at ``now`` (paused, not started, ended), or None."""
    if template.status != "active":
        return f"promotion {template.code} is {template.status}"
    starts, ends = _utc(template.starts_at), _utc(template.ends_at)
    if starts is not None and now < starts:
        return f"promotion {template.code} starts at {starts.isoformat()}"
    if ends is not None and now >= ends:
        return f"promotion {template.code} ended at {ends.isoformat()}"
    return None


def coupon_read(coupon: Coupon, template: PromotionTemplate, now: datetime | None = None) -> CouponRead:
    """The outward form; an unused coupon whose promotion has ended reads as ``expired``."""
    status = coupon.status
    ends = _utc(template.ends_at)
    if status in _USABLE and ends is not None and (now or utcnow()) >= ends:
        status = "expired"
    return CouponRead(
        code=coupon.code,
        template_code=template.code,
        member_key=coupon.member_key,
        status=status,
        order_reference=coupon.order_reference,
        discount=None if coupon.discount_cents is None else Decimal(coupon.discount_cents) / 100,
        reason=coupon.reason,
        issued_at=coupon.issued_at,
        updated_at=coupon.updated_at,
    )


def coupon_row(session: Session, code: str) -> tuple[Coupon, PromotionTemplate]:
    """The coupon with this code and its template, or NotFoundError."""
    found = session.execute(
        select(Coupon, PromotionTemplate)
        .join(PromotionTemplate, PromotionTemplate.id == Coupon.template_id)
        .where(Coupon.code == code.strip().upper())
        .execution_options(populate_existing=True)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"no coupon {code!r}")
    return found[0], found[1]


def issue_coupon(
    session: Session, template_code: str, member_key: str, reason: str = "", *, length: int = 10
) -> CouponRead:
    """Give a member a new coupon of a template (a fresh random code)."""
    template = template_row(session, template_code)
    if template.status == "archived":
        raise ConflictError(f"promotion {template_code} is archived")
    for _ in range(5):  # a clash in 31**10 codes is astronomically rare; retry anyway
        code = _new_code("", length)
        if session.scalar(select(Coupon.id).where(Coupon.code == code)) is None:
            break
    now = utcnow()
    coupon = Coupon(code=code, template_id=template.id, member_key=member_key, status="issued", reason=reason[:256])
    coupon.issued_at = coupon.updated_at = now
    session.add(coupon)
    session.flush()
    return coupon_read(coupon, template, now)


def member_coupons(session: Session, member_key: str) -> list[CouponRead]:
    """A member's coupons, newest first."""
    rows = session.execute(
        select(Coupon, PromotionTemplate)
        .join(PromotionTemplate, PromotionTemplate.id == Coupon.template_id)
        .where(Coupon.member_key == member_key)
        .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
    )
    now = utcnow()
    return [coupon_read(coupon, template, now) for coupon, template in rows]


def _usage_upsert(session: Session, template_id: int, member_key: str) -> None:
    values = {"template_id": template_id, "member_key": member_key, "uses": 0}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(PromotionUsage).values(values).on_conflict_do_nothing())


def take_use(session: Session, template: PromotionTemplate, member_key: str | None, amount: int) -> None:
    """Count one use and ``amount`` cents of discount against the template's limits, budget and member limit.

    ConflictError (nothing counted; the caller's transaction must roll back) when
    no use or not enough budget is left, or the member has used it up.
    """
    taken = session.execute(
        update(PromotionTemplate)
        .where(
            PromotionTemplate.id == template.id,
            or_(PromotionTemplate.global_limit.is_(None), PromotionTemplate.used < PromotionTemplate.global_limit),
            or_(
                PromotionTemplate.budget_cents.is_(None),
                PromotionTemplate.spent_cents + amount <= PromotionTemplate.budget_cents,
            ),
        )
        .values(used=PromotionTemplate.used + 1, spent_cents=PromotionTemplate.spent_cents + amount)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(template)
        if template.global_limit is not None and template.used >= template.global_limit:
            raise ConflictError(f"promotion {template.code} has no uses left (limit {template.global_limit})")
        raise ConflictError(f"promotion {template.code} has not enough budget left for {Decimal(amount) / 100}")
    if member_key is None:
        return
    _usage_upsert(session, template.id, member_key)
    limit = template.per_member_limit
    counted = session.execute(
        update(PromotionUsage)
        .where(
            PromotionUsage.template_id == template.id,
            PromotionUsage.member_key == member_key,
            true() if limit is None else PromotionUsage.uses < limit,
        )
        .values(uses=PromotionUsage.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"member {member_key} has used promotion {template.code} {limit} times already")


def reserve_coupon(
    session: Session,
    code: str,
    *,
    order_reference: str,
    discount: Decimal,
    member_key: str | None = None,
    now: datetime | None = None,
) -> CouponRead:
    """Hold a usable coupon for an order; its use and ``discount`` count against the limits and the budget."""
    now = now or utcnow()
    coupon, template = coupon_row(session, code)
    if coupon.member_key and member_key and member_key != coupon.member_key:
        raise ConflictError(f"coupon {coupon.code} belongs to another member")
    problem = window_problem(template, now)
    if problem:
        raise ConflictError(problem)
    user = member_key or coupon.member_key
    amount = cents(discount)
    claimed = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status.in_(_USABLE))
        .values(status="reserved", order_reference=order_reference, discount_cents=amount, usage_member=user)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(coupon)
        raise ConflictError(f"coupon {coupon.code} is {coupon.status}, not available")
    take_use(session, template, user, amount)
    session.add(
        PromotionRedemption(
            template_id=template.id,
            coupon_id=coupon.id,
            member_key=user,
            order_reference=order_reference,
            discount_cents=amount,
            status="reserved",
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    session.refresh(coupon)
    return coupon_read(coupon, template, now)


def _held_for(session: Session, code: str, order_reference: str, statuses: tuple[str, ...]) -> tuple[Coupon, Any]:
    coupon, template = coupon_row(session, code)
    if coupon.status not in statuses:
        raise ConflictError(f"coupon {coupon.code} is {coupon.status}")
    if coupon.order_reference != order_reference:
        raise ConflictError(f"coupon {coupon.code} is held by another order")
    return coupon, template


def _redemption(session: Session, coupon: Coupon) -> PromotionRedemption:
    found = session.scalar(
        select(PromotionRedemption)
        .where(
            PromotionRedemption.coupon_id == coupon.id,
            PromotionRedemption.order_reference == coupon.order_reference,
            PromotionRedemption.status != "released",
        )
        .order_by(PromotionRedemption.id.desc())
    )
    assert found is not None, "a held coupon always has its redemption"
    return found


def redeem_coupon(session: Session, code: str, *, order_reference: str, now: datetime | None = None) -> CouponRead:
    """The order holding the coupon was paid: the coupon is used for good."""
    now = now or utcnow()
    coupon, template = _held_for(session, code, order_reference, ("reserved",))
    done = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "reserved", Coupon.order_reference == order_reference)
        .values(status="redeemed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"coupon {coupon.code} changed meanwhile; try again")
    redemption = _redemption(session, coupon)
    redemption.status, redemption.updated_at = "redeemed", now
    session.flush()
    session.refresh(coupon)
    return coupon_read(coupon, template, now)


def release_coupon(session: Session, code: str, *, order_reference: str, now: datetime | None = None) -> CouponRead:
    """The order was cancelled: the coupon becomes usable again and its use and discount are given back."""
    now = now or utcnow()
    coupon, template = _held_for(session, code, order_reference, ("reserved", "redeemed"))
    amount, user = coupon.discount_cents or 0, coupon.usage_member
    redemption = _redemption(session, coupon)
    done = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == coupon.status, Coupon.order_reference == order_reference)
        .values(status="released", order_reference=None, discount_cents=None, usage_member=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"coupon {coupon.code} changed meanwhile; try again")
    give_back_use(session, template.id, user, amount)
    redemption.status, redemption.updated_at = "released", now
    session.flush()
    session.refresh(coupon)
    session.refresh(template)
    return coupon_read(coupon, template, now)


def give_back_use(session: Session, template_id: int, member_key: str | None, amount: int) -> None:
    """Undo :func:`take_use`: one use and ``amount`` cents back to the template (and the member's use)."""
    session.execute(
        update(PromotionTemplate)
        .where(PromotionTemplate.id == template_id)
        .values(used=PromotionTemplate.used - 1, spent_cents=PromotionTemplate.spent_cents - amount)
        .execution_options(synchronize_session=False)
    )
    if member_key is not None:
        session.execute(
            update(PromotionUsage)
            .where(PromotionUsage.template_id == template_id, PromotionUsage.member_key == member_key)
            .values(uses=PromotionUsage.uses - 1)
            .execution_options(synchronize_session=False)
        )


def expire_coupons(
    store: OperationalStore, as_of: datetime | None = None, progress: Callable[[int, int], None] | None = None
) -> int:
    """Mark ``expired`` every unused coupon (issued or released) whose promotion ended by ``as_of`` (default now).

    One ended promotion per transaction; ``progress(done, total)`` after each.
    Held coupons (reserved, redeemed) are left to their orders. Returns the
    coupons expired; safe to run again or alongside other writers.
    """
    moment = as_of or utcnow()
    with store.session() as session:
        ended = list(
            session.scalars(
                select(PromotionTemplate.id)
                .where(PromotionTemplate.ends_at.is_not(None), PromotionTemplate.ends_at <= moment)
                .order_by(PromotionTemplate.id)
            )
        )
    expired = 0
    for done, template_id in enumerate(ended, start=1):
        with store.session() as session:
            result = session.execute(
                update(Coupon)
                .where(Coupon.template_id == template_id, Coupon.status.in_(_USABLE))
                .values(status="expired", updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            expired += int(result.rowcount)  # type: ignore[attr-defined]
        if progress is not None:
            progress(done, len(ended))
    return expired


def write_once(
    store: OperationalStore,
    scope: str,
    key: str | None,
    request: Mapping[str, Any],
    action: Callable[[Session], BaseModel],
) -> tuple[dict[str, Any], bool]:
    """Run a write in its own transaction; with a key, at most once (see patron.db.idempotency).

    Returns the JSON-ready response and whether it was replayed from an earlier call.
    """

    def run(session: Session) -> dict[str, Any]:
        return action(session).model_dump(mode="json")

    if key is None:
        with store.session() as session:
            return run(session), False
    return run_idempotent(store, scope, key, request, run)
