"""Event rules: points for signing up, a first order, reviews, birthdays and daily check-ins.

============== ===================================================================================
event          pays
============== ===================================================================================
sign_up        once per member
first_order    once per member (paid automatically with the member's first recorded order)
review         once per review (``reference`` is the review's id), at most ``daily_limit`` a day
birthday       once a year, in the birthday month (``birthday_window: month``) or on the day
               (``day``; 29 February counts on 28 February in other years); the request carries the
               member's ``birthday``
daily_check_in once per local day; every ``streak_days``-th consecutive day adds ``streak_bonus``
============== ===================================================================================

Days are local to the program's time zone. Once-ness is a unique constraint on (member, event, period), so
two racing requests pay once; a repeat is answered with ``awarded: false`` and the reason, not an error.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ValidationError
from patron.loyalty import ledger
from patron.loyalty.earning import AwareDatetime, MemberKey, as_utc, expiry_for
from patron.loyalty.program_models import EventAward, EventRule
from patron.loyalty.tiers import TierChangeRead, program_settings

__all__ = [
    "EVENTS",
    "Event",
    "EventIn",
    "EventOutcome",
    "EventRuleRead",
    "EventRuleSet",
    "award_event",
    "list_event_rules",
    "set_event_rule",
]

Event = Literal["sign_up", "first_order", "review", "birthday", "daily_check_in"]
EVENTS: tuple[Event, ...] = ("sign_up", "first_order", "review", "birthday", "daily_check_in")
_ONLY = {"daily_limit": "review", "birthday_window": "birthday", "streak_days": "daily_check_in"}


class EventIn(BaseModel):
    """A member event to pay points for."""

    model_config = ConfigDict(extra="forbid")

    member_key: MemberKey
    event: Event
    occurred_at: AwareDatetime
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    birthday: date | None = None


class EventOutcome(BaseModel):
    """Whether the event paid, how much, and why (or why not)."""

    member_key: str
    event: Event
    awarded: bool
    points: int
    period_key: str | None
    streak: int | None = None
    reason: str
    rule_found: bool = True
    tier_change: TierChangeRead | None = None
    replayed: bool = False


class EventRuleSet(BaseModel):
    """An event's rule; the fields of other events are refused."""

    model_config = ConfigDict(extra="forbid")

    points: Annotated[int, Field(ge=0, le=1_000_000)]
    enabled: bool = True
    daily_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    birthday_window: Literal["month", "day"] | None = None
    streak_days: Annotated[int, Field(ge=2, le=366)] | None = None
    streak_bonus: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class EventRuleRead(EventRuleSet):
    model_config = ConfigDict(from_attributes=True)

    event: Event
    updated_by: str
    updated_at: datetime


def list_event_rules(session: Session) -> list[EventRuleRead]:
    """Every event's rule, in the order of ``EVENTS``."""
    rules = {r.event: r for r in session.scalars(select(EventRule))}
    return [EventRuleRead.model_validate(rules[e]) for e in EVENTS if e in rules]


def _check(event: Event, data: EventRuleSet) -> dict[str, Any]:
    values = data.model_dump()
    for name, owner in _ONLY.items():
        if values[name] is not None and owner != event:
            raise ValidationError(f"{name} applies only to {owner} rules", field=name)
    if values["streak_bonus"] is not None and event != "daily_check_in":
        raise ValidationError("streak_bonus applies only to daily_check_in rules", field="streak_bonus")
    if (values["streak_days"] is None) != (values["streak_bonus"] is None):
        raise ValidationError("streak_days and streak_bonus go together", field="streak_bonus")
    if event == "birthday" and values["birthday_window"] is None:
        values["birthday_window"] = "month"
    return values


def set_event_rule(store: OperationalStore, event: Event, data: EventRuleSet, actor: str) -> EventRuleRead:
    """Create or replace the rule of ``event``."""
    values = _check(event, data)
    with store.session() as session:
        rule = session.get(EventRule, event) or EventRule(event=event)
        for name, value in values.items():
            setattr(rule, name, value)
        rule.updated_by, rule.updated_at = actor[:128], utcnow()
        session.add(rule)
        session.flush()
        return EventRuleRead.model_validate(rule)


def _birthday_today(birthday: date, local: date, window: str) -> bool:
    if local.month != birthday.month:
        return False
    if window == "month":
        return True
    leap_day_elsewhere = birthday.day == 29 and birthday.month == 2 and local.day == 28
    return local.day == birthday.day or (leap_day_elsewhere and (local + timedelta(days=1)).month == 3)


def _period(session: Session, event: EventIn, rule: EventRule, local: date) -> tuple[str | None, str]:
    """The event's period key, or None and why it does not pay."""
    if event.event in ("sign_up", "first_order"):
        return "once", ""
    if event.event == "daily_check_in":
        return local.isoformat(), ""
    if event.event == "birthday":
        if event.birthday is None:
            raise ValidationError("a birthday event needs the member's birthday", field="birthday")
        if not _birthday_today(event.birthday, local, rule.birthday_window or "month"):
            return None, f"{local.isoformat()} is outside the birthday {rule.birthday_window or 'month'}"
        return str(local.year), ""
    if event.reference is None:
        raise ValidationError("a review event needs the review's id as reference", field="reference")
    if rule.daily_limit is not None:
        today = session.scalar(
            select(func.count()).where(
                EventAward.member_key == event.member_key,
                EventAward.event == "review",
                EventAward.day == local.isoformat(),
            )
        )
        if (today or 0) >= rule.daily_limit:
            return None, f"daily limit of {rule.daily_limit} review award(s) reached"
    return f"review:{event.reference}", ""


def _streak(session: Session, member_key: str, local: date, rule: EventRule) -> tuple[int, int]:
    """The check-in streak including ``local`` and the bonus it pays."""
    before = session.scalar(
        select(EventAward.streak).where(
            EventAward.member_key == member_key,
            EventAward.event == "daily_check_in",
            EventAward.day == (local - timedelta(days=1)).isoformat(),
        )
    )
    streak = (before or 0) + 1
    bonus = rule.streak_bonus or 0
    return streak, bonus if rule.streak_days and streak % rule.streak_days == 0 else 0


def award_event(session: Session, event: EventIn, actor: str) -> EventOutcome:
    """Pay ``event`` under its rule in this transaction (never commits); says why when it does not pay."""
    base = {"member_key": event.member_key, "event": event.event}
    rule = session.get(EventRule, event.event)
    if rule is None or not rule.enabled:
        return EventOutcome(
            **base, awarded=False, points=0, period_key=None, reason="no enabled rule", rule_found=False
        )
    settings = program_settings(session)
    local = as_utc(event.occurred_at).astimezone(ZoneInfo(settings.timezone)).date()
    key, why_not = _period(session, event, rule, local)
    if key is None:
        return EventOutcome(**base, awarded=False, points=0, period_key=None, reason=why_not)
    streak, bonus = _streak(session, event.member_key, local, rule) if event.event == "daily_check_in" else (1, 0)
    points = rule.points + bonus
    reference = f"event:{event.event}:{event.member_key}:{key}"
    award = EventAward(
        member_key=event.member_key,
        event=event.event,
        period_key=key,
        day=local.isoformat(),
        streak=streak,
        points=points,
        reference=reference,
    )
    try:
        with session.begin_nested():
            session.add(award)
    except IntegrityError:
        return EventOutcome(**base, awarded=False, points=0, period_key=key, reason=f"already awarded for {key}")
    if points > 0:
        ledger.earn(
            session,
            member_key=event.member_key,
            points=points,
            source=event.event,
            reference=reference,
            expires_at=expiry_for(event.occurred_at, settings.expiry_months, settings.timezone),
            pending_until=None,
            actor=actor,
            memo=f"{event.event} {key}",
        )
    why = f"{event.event} rule: {rule.points} point(s)" + (f" + streak bonus {bonus} (day {streak})" if bonus else "")
    return EventOutcome(
        **base,
        awarded=True,
        points=points,
        period_key=key,
        streak=streak if event.event == "daily_check_in" else None,
        reason=why,
    )
