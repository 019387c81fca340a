"""The loyalty program's operations: rules, settings, orders and returns, member events, dry runs.

- ``record_order`` earns an order's points once (the order key is unique; the idempotency key makes a retry
  replay the first answer). The points are pending until ``paid_at + return_window_days`` and expire at the
  start of the local month that follows ``expiry_months`` months after payment (12: an order paid on
  2026-03-15 expires at 2027-04-01 00:00 local time), or never when ``expiry_months`` is 0.
- ``record_return`` keeps points in proportion to the spend still kept:
  ``floor(points x (spend - returned) / spend)``; the ledger reverses the earning and earns what is kept again,
  with the same pending and expiry dates. A full return reverses everything.
- ``record_event`` pays sign-up, first-order, review, birthday and daily check-in points under their rules
  (see :mod:`patron.loyalty.events`); the first order also pays ``first_order`` automatically.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.db.idempotency import run_idempotent
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.loyalty import ledger
from patron.loyalty.earning import (
    EarningExplanation,
    OrderIn,
    Period,
    as_utc,
    evaluate_order,
    expiry_for,
    period_bounds,
)
from patron.loyalty.program_events import EventIn, EventOutcome, award_event
from patron.loyalty.program_models import LoyaltyOrder, SpendRecord
from patron.loyalty.program_rules import load_rules
from patron.loyalty.tiers import TierChangeRead, evaluate_member, lock_member, program_settings, tier_benefit

__all__ = [
    "OrderRecorded",
    "ReturnLineIn",
    "ReturnRecorded",
    "dry_run",
    "expiry_for",
    "get_order",
    "record_event",
    "record_order",
    "record_return",
]

_CENT = Decimal("0.01")


class OrderRecorded(BaseModel):
    """What an order earned; ``already_recorded``: the order was seen before (under another key)."""

    order_key: str
    member_key: str
    status: str
    points: int
    points_kept: int
    pending_until: datetime | None
    expires_at: datetime | None
    explanation: EarningExplanation
    first_order: EventOutcome | None = None
    tier_change: TierChangeRead | None = None
    already_recorded: bool = False
    replayed: bool = False


class ReturnLineIn(BaseModel):
    """Part of a line sent back: ``quantity`` of the line's units."""

    model_config = ConfigDict(extra="forbid")

    line_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]


class ReturnRecorded(BaseModel):
    order_key: str
    member_key: str
    status: str
    returned_spend: Decimal
    points_reversed: int
    points_kept: int
    tier_change: TierChangeRead | None = None
    replayed: bool = False


def _earned_in(session: Session, member_key: str, periods: set[Period], at: datetime, tz: str) -> dict[Period, int]:
    found: dict[Period, int] = {}
    for period in periods:
        start, end = period_bounds(period, at, tz)
        found[period] = ledger.earned_between(session, member_key, start, end)
    return found


def _explain(session: Session, order: OrderIn) -> EarningExplanation:
    settings = program_settings(session)
    rules = load_rules(session, settings)
    earned = _earned_in(session, order.member_key, {c.period for c in rules.caps}, order.paid_at, settings.timezone)
    return evaluate_order(order, rules, tier=tier_benefit(session, order.member_key), earned_in=earned)


def dry_run(session: Session, order: OrderIn) -> EarningExplanation:
    """How many points ``order`` would earn now and why; writes nothing."""
    return _explain(session, order)


def _recorded(row: LoyaltyOrder, **extra: Any) -> OrderRecorded:
    return OrderRecorded(
        order_key=row.order_key,
        member_key=row.member_key,
        status=row.status,
        points=row.points,
        points_kept=row.points_kept,
        pending_until=row.pending_until,
        expires_at=row.expires_at,
        explanation=EarningExplanation.model_validate(row.explanation),
        **extra,
    )


def _record_order(session: Session, order: OrderIn, actor: str) -> OrderRecorded:
    lock_member(session, order.member_key)
    seen = session.get(LoyaltyOrder, order.order_key)
    if seen is not None:
        if seen.member_key != order.member_key:
            raise ConflictError(f"order {order.order_key!r} was recorded for another member")
        return _recorded(seen, already_recorded=True)
    settings = program_settings(session)
    explanation = _explain(session, order)
    pending_until = order.paid_at + timedelta(days=settings.return_window_days)
    expires_at = expiry_for(order.paid_at, settings.expiry_months, settings.timezone)
    reference = f"order:{order.order_key}"
    # An order recorded so late that its points would already have expired earns nothing (and says so).
    lapsed = expires_at is not None and expires_at <= utcnow()
    earned = 0 if lapsed else explanation.points
    if earned > 0:
        ledger.earn(
            session,
            member_key=order.member_key,
            points=earned,
            source="order",
            reference=reference,
            expires_at=expires_at,
            pending_until=pending_until if pending_until > utcnow() else None,
            actor=actor,
            memo=f"order {order.order_key}",
        )
    row = LoyaltyOrder(
        order_key=order.order_key,
        member_key=order.member_key,
        paid_at=order.paid_at,
        spend=order.spend,
        points=earned,
        points_kept=earned,
        returned_spend=Decimal(0),
        status="earned",
        earn_reference=reference if earned > 0 else None,
        returns=0,
        pending_until=pending_until,
        expires_at=expires_at,
        explanation={
            **explanation.model_dump(mode="json"),
            "order_lines": [
                line.model_dump(mode="json", include={"line_id", "quantity", "amount"}) for line in order.lines
            ],
            "returned": {},
            "expired_before_recorded": lapsed,
        },
    )
    session.add(row)
    session.add(
        SpendRecord(member_key=order.member_key, order_key=order.order_key, amount=order.spend, at=order.paid_at)
    )
    session.flush()
    first = award_event(
        session, EventIn(member_key=order.member_key, event="first_order", occurred_at=order.paid_at), actor
    )
    change = evaluate_member(
        session, order.member_key, max(utcnow(), order.paid_at), reason="upgrade", allow_downgrade=False
    )
    return _recorded(row, first_order=first if first.rule_found else None, tier_change=change)


def record_order(store: OperationalStore, order: OrderIn, idempotency_key: str, actor: str) -> OrderRecorded:
    """Earn an order's points once; a retry with the same key replays the first answer."""
    request = order.model_dump(mode="json")
    response, replayed = run_idempotent(
        store,
        "loyalty.order",
        idempotency_key,
        request,
        lambda s: _record_order(s, order, actor).model_dump(mode="json"),
    )
    return OrderRecorded.model_validate({**response, "replayed": replayed})


def get_order(session: Session, order_key: str) -> OrderRecorded:
    """An order seen for earning, with what it earned and kept."""
    row = session.get(LoyaltyOrder, order_key)
    if row is None:
        raise NotFoundError(f"no loyalty order {order_key!r}")
    return _recorded(row)


def _returned_amount(row: LoyaltyOrder, lines: list[ReturnLineIn] | None) -> tuple[Decimal, dict[str, int]]:
    """The spend sent back now and the units returned per line so far."""
    returned: dict[str, int] = dict(row.explanation.get("returned", {}))
    by_id = {line["line_id"]: line for line in row.explanation.get("order_lines", [])}
    if lines is None:
        return row.spend - row.returned_spend, {k: int(v["quantity"]) for k, v in by_id.items()}
    amount = Decimal(0)
    for position, wanted in enumerate(lines):
        line = by_id.get(wanted.line_id)
        if line is None:
            raise ValidationError(f"order {row.order_key!r} has no line {wanted.line_id!r}", field=f"lines.{position}")
        left = int(line["quantity"]) - returned.get(wanted.line_id, 0)
        if wanted.quantity > left:
            raise ValidationError(
                f"line {wanted.line_id!r} has {left} unit(s) left to return", field=f"lines.{position}.quantity"
            )
        returned[wanted.line_id] = returned.get(wanted.line_id, 0) + wanted.quantity
        share = Decimal(line["amount"]) * wanted.quantity / int(line["quantity"])
        amount += share.quantize(_CENT)
    return min(amount, row.spend - row.returned_spend), returned


def _record_return(session: Session, order_key: str, lines: list[ReturnLineIn] | None, actor: str) -> ReturnRecorded:
    row = session.get(LoyaltyOrder, order_key)
    if row is None:
        raise NotFoundError(f"no loyalty order {order_key!r}")
    lock_member(session, row.member_key)
    session.refresh(row)
    if row.status == "returned":
        raise ConflictError(f"order {order_key!r} was returned in full already")
    amount, returned = _returned_amount(row, lines)
    row.returned_spend += amount
    remaining = row.spend - row.returned_spend
    kept = 0 if row.spend <= 0 else int((row.points * remaining / row.spend).to_integral_value(rounding=ROUND_FLOOR))
    reversed_points = row.points_kept - kept
    if reversed_points > 0 and row.earn_reference:
        ledger.reverse(session, reference=row.earn_reference, actor=actor, reason=f"return of order {order_key}")
        row.earn_reference = None
        if kept > 0:
            row.earn_reference = f"order:{order_key}:kept{row.returns + 1}"
            pending = row.pending_until if row.pending_until and as_utc(row.pending_until) > utcnow() else None
            ledger.earn(
                session,
                member_key=row.member_key,
                points=kept,
                source="order",
                reference=row.earn_reference,
                expires_at=row.expires_at,
                pending_until=pending,
                actor=actor,
                memo=f"order {order_key}: points kept after a return",
            )
    row.returns += 1
    row.points_kept = kept
    row.status = "returned" if remaining <= 0 else "partially_returned"
    row.explanation = {**row.explanation, "returned": returned}
    session.add(SpendRecord(member_key=row.member_key, order_key=order_key, amount=-amount, at=row.paid_at))
    session.flush()
    change = None
    if program_settings(session).downgrade_policy == "on_return":
        change = evaluate_member(session, row.member_key, utcnow(), reason="on_return", allow_downgrade=True)
    return ReturnRecorded(
        order_key=order_key,
        member_key=row.member_key,
        status=row.status,
        returned_spend=amount,
        points_reversed=max(reversed_points, 0),
        points_kept=kept,
        tier_change=change,
    )


def record_return(
    store: OperationalStore,
    order_key: str,
    lines: list[ReturnLineIn] | None,
    idempotency_key: str,
    actor: str,
) -> ReturnRecorded:
    """Take back the points of returned lines (all of them when ``lines`` is None)."""
    request = {"order_key": order_key, "lines": None if lines is None else [x.model_dump() for x in lines]}
    response, replayed = run_idempotent(
        store,
        "loyalty.return",
        idempotency_key,
        request,
        lambda s: _record_return(s, order_key, lines, actor).model_dump(mode="json"),
    )
    return ReturnRecorded.model_validate({**response, "replayed": replayed})


def record_event(store: OperationalStore, event: EventIn, idempotency_key: str, actor: str) -> EventOutcome:
    """Pay a member event under its rule (once, per day, per review or per year as the event says)."""
    response, replayed = run_idempotent(
        store,
        "loyalty.event",
        idempotency_key,
        event.model_dump(mode="json"),
        lambda s: _event(s, event, actor).model_dump(mode="json"),
    )
    return EventOutcome.model_validate({**response, "replayed": replayed})


def _event(session: Session, event: EventIn, actor: str) -> EventOutcome:
    outcome = award_event(session, event, actor)
    if outcome.awarded:
        change = evaluate_member(
            session, event.member_key, max(utcnow(), event.occurred_at), reason="upgrade", allow_downgrade=False
        )
        outcome = outcome.model_copy(update={"tier_change": change})
    return outcome
