"""Member tiers: thresholds on points earned or spend over a rolling window, benefits, history, re-evaluation.

- A member's qualifying value is the points earned (ledger) or the net spend (orders less returns) in the
  ``tier_window_days`` days up to now; the tier is the one with the highest threshold at or below it.
- **Upgrade is immediate**: every recorded order or event re-evaluates its member and raises the tier at
  once; coupons of the new tier are issued then.
- **Downgrade policy**: ``none`` (never), ``periodic`` (the ``tier-reevaluation`` job moves members down
  as well as up), ``on_return`` (a return re-evaluates the member at once and may move them down).
- Every change is kept in the tier history with its reason and the value that decided it.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, PatronError
from patron.loyalty.earning import TierBenefit, as_utc
from patron.loyalty.program_models import LoyaltyOrder, MemberTier, ProgramSettings, SpendRecord, Tier, TierChange
from patron.progress import NullProgress, Progress

__all__ = [
    "DEFAULT_SETTINGS",
    "MemberTierRead",
    "ProgramSettingsRead",
    "TierChangeRead",
    "TierCreate",
    "TierRead",
    "TierUpdate",
    "create_tier",
    "current_tier",
    "delete_tier",
    "evaluate_member",
    "list_tiers",
    "lock_member",
    "member_tier",
    "program_settings",
    "reevaluate_all",
    "tier_benefit",
    "update_tier",
]

log = logging.getLogger(__name__)

Basis = Literal["points", "spend"]
Downgrade = Literal["none", "periodic", "on_return"]
ChangeReason = Literal["upgrade", "periodic", "on_return"]
TierCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
TemplateCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
DEFAULT_SETTINGS: dict[str, Any] = {
    "tier_basis": "points",
    "tier_window_days": 365,
    "downgrade_policy": "periodic",
    "combine": "multiply",
    "return_window_days": 7,
    "expiry_months": 12,
    "timezone": "Asia/Shanghai",
}
_BATCH = 200


class TierCreate(BaseModel):
    """A tier and its benefits: an earning ``multiplier``, coupon templates issued on upgrade, free shipping."""

    model_config = ConfigDict(extra="forbid")

    code: TierCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    threshold: Annotated[Decimal, Field(ge=0, le=Decimal("1e11"), max_digits=14, decimal_places=2)]
    multiplier: Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3)] = Decimal(1)
    coupons: Annotated[list[TemplateCode], Field(max_length=20)] = []
    free_shipping: bool = False


class TierUpdate(BaseModel):
    """A partial change of a tier (its code stays)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    threshold: Annotated[Decimal, Field(ge=0, le=Decimal("1e11"), max_digits=14, decimal_places=2)] | None = None
    multiplier: Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3)] | None = None
    coupons: Annotated[list[TemplateCode], Field(max_length=20)] | None = None
    free_shipping: bool | None = None


class TierRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    threshold: Decimal
    multiplier: Decimal
    coupons: list[str]
    free_shipping: bool


class TierChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_tier: str | None
    to_tier: str | None
    reason: ChangeReason
    basis: Basis
    value: Decimal
    coupons: list[dict[str, Any]]
    at: datetime


class MemberTierRead(BaseModel):
    """A member's tier now, the value it rests on, and every change (newest first)."""

    member_key: str
    tier: TierRead | None
    since: datetime | None
    basis: Basis
    window_days: int
    qualifying_value: Decimal
    downgrade_policy: Downgrade
    history: list[TierChangeRead]


class ProgramSettingsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tier_basis: Basis
    tier_window_days: int
    downgrade_policy: Downgrade
    combine: Literal["multiply", "max"]
    return_window_days: int
    expiry_months: int
    timezone: str


def _insert_ignore(session: Session, table: Any, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(table).values(values).on_conflict_do_nothing(index_elements=keys))


def program_settings(session: Session) -> ProgramSettingsRead:
    """The program's settings (the defaults until someone changes them)."""
    row = session.get(ProgramSettings, 1)
    if row is None:
        return ProgramSettingsRead.model_validate(DEFAULT_SETTINGS)
    return ProgramSettingsRead.model_validate(row)


def list_tiers(session: Session) -> list[TierRead]:
    """Tiers from the lowest threshold up."""
    return [TierRead.model_validate(t) for t in session.scalars(select(Tier).order_by(Tier.threshold))]


def _tier(session: Session, code: str) -> Tier:
    tier = session.get(Tier, code)
    if tier is None:
        raise NotFoundError(f"no tier {code!r}")
    return tier


def _threshold_free(session: Session, threshold: Decimal, code: str) -> None:
    other = session.scalar(select(Tier.code).where(Tier.threshold == threshold, Tier.code != code))
    if other is not None:
        raise ConflictError(f"tier {other!r} has the threshold {threshold} already")


def create_tier(store: OperationalStore, data: TierCreate) -> TierRead:
    """Add a tier; codes and thresholds are unique."""
    with store.session() as session:
        if session.get(Tier, data.code) is not None:
            raise ConflictError(f"a tier {data.code!r} exists already")
        _threshold_free(session, data.threshold, data.code)
        tier = Tier(**data.model_dump())
        session.add(tier)
        session.flush()
        return TierRead.model_validate(tier)


def update_tier(store: OperationalStore, code: str, changes: TierUpdate) -> TierRead:
    """Change a tier; members keep it until their next evaluation."""
    with store.session() as session:
        tier = _tier(session, code)
        given = changes.model_dump(exclude_unset=True, exclude_none=True)
        if "threshold" in given:
            _threshold_free(session, given["threshold"], code)
        for name, value in given.items():
            setattr(tier, name, value)
        tier.updated_at = utcnow()
        session.flush()
        return TierRead.model_validate(tier)


def delete_tier(store: OperationalStore, code: str) -> TierRead:
    """Delete a tier nobody holds."""
    with store.session() as session:
        tier = _tier(session, code)
        holders = session.scalar(select(func.count()).select_from(MemberTier).where(MemberTier.tier_code == code))
        if holders:
            raise ConflictError(f"{holders} member(s) hold tier {code!r}; move them first")
        gone = TierRead.model_validate(tier)
        session.delete(tier)
        return gone


def lock_member(session: Session, member_key: str) -> MemberTier:
    """The member's state row, locked for this transaction: earning for one member is serialized."""
    _insert_ignore(session, MemberTier.__table__, {"member_key": member_key, "version": 0}, ["member_key"])
    session.execute(
        update(MemberTier).where(MemberTier.member_key == member_key).values(version=MemberTier.version + 1)
    )
    state = session.get(MemberTier, member_key, populate_existing=True)
    assert state is not None  # inserted above
    return state


def current_tier(session: Session, member_key: str) -> str | None:
    """The code of the member's tier, or None."""
    return session.scalar(select(MemberTier.tier_code).where(MemberTier.member_key == member_key))


def tier_benefit(session: Session, member_key: str) -> TierBenefit | None:
    """The member's tier and its earning multiplier, or None."""
    code = current_tier(session, member_key)
    tier = session.get(Tier, code) if code else None
    return None if tier is None else TierBenefit(code=tier.code, multiplier=tier.multiplier)


def _qualifying_value(session: Session, member_key: str, as_of: datetime, settings: ProgramSettingsRead) -> Decimal:
    start = as_of - timedelta(days=settings.tier_window_days)
    if settings.tier_basis == "points":
        from patron.loyalty import ledger

        return Decimal(ledger.earned_between(session, member_key, start, as_of))
    total = session.scalar(
        select(func.coalesce(func.sum(SpendRecord.amount), 0)).where(
            SpendRecord.member_key == member_key, SpendRecord.at > start, SpendRecord.at <= as_of
        )
    )
    return Decimal(total or 0)


def _issue_coupons(session: Session, codes: list[str], member_key: str, tier: str) -> list[dict[str, Any]]:
    """Issue the tier's coupon templates through the promotions domain when it offers ``issue_coupon``."""
    try:
        issue = getattr(importlib.import_module("patron.promotions.service"), "issue_coupon", None)
    except ImportError:
        issue = None
    outcome: list[dict[str, Any]] = []
    for code in codes:
        if issue is None:
            outcome.append({"template": code, "issued": False, "error": "coupons are not available"})
            continue
        try:
            with session.begin_nested():
                issue(session, code, member_key, f"tier upgrade to {tier}")
            outcome.append({"template": code, "issued": True})
        except PatronError as exc:
            log.warning("tier coupon not issued", extra={"member_key": member_key, "template": code})
            outcome.append({"template": code, "issued": False, "error": str(exc)})
    return outcome


def evaluate_member(
    session: Session, member_key: str, as_of: datetime, *, reason: ChangeReason, allow_downgrade: bool
) -> TierChangeRead | None:
    """Move the member to the tier their qualifying value reaches (down only if allowed); the change or None."""
    as_of = as_utc(as_of)
    settings = program_settings(session)
    state = lock_member(session, member_key)
    value = _qualifying_value(session, member_key, as_of, settings)
    target = session.scalars(select(Tier).where(Tier.threshold <= value).order_by(Tier.threshold.desc())).first()
    current = session.get(Tier, state.tier_code) if state.tier_code else None
    state.evaluated_at = as_of
    if (target.code if target else None) == state.tier_code:
        return None
    rising = target is not None and (current is None or target.threshold > current.threshold)
    if not rising and not allow_downgrade:
        return None
    change = TierChange(
        member_key=member_key,
        from_tier=state.tier_code,
        to_tier=target.code if target else None,
        reason="upgrade" if rising else reason,
        basis=settings.tier_basis,
        value=value,
        coupons=[],
        at=as_of,
    )
    if rising and target is not None:
        change.coupons = _issue_coupons(session, list(target.coupons), member_key, target.code)
    state.tier_code, state.since = change.to_tier, as_of
    session.add(change)
    session.flush()
    return TierChangeRead.model_validate(change)


def member_tier(session: Session, member_key: str, as_of: datetime | None = None) -> MemberTierRead:
    """The member's tier, qualifying value now and history; no writes."""
    as_of = as_utc(as_of or utcnow())
    settings = program_settings(session)
    state = session.get(MemberTier, member_key)
    tier = session.get(Tier, state.tier_code) if state and state.tier_code else None
    history = session.scalars(
        select(TierChange)
        .where(TierChange.member_key == member_key)
        .order_by(TierChange.at.desc(), TierChange.id.desc())
    )
    return MemberTierRead(
        member_key=member_key,
        tier=TierRead.model_validate(tier) if tier else None,
        since=state.since if state else None,
        basis=settings.tier_basis,
        window_days=settings.tier_window_days,
        qualifying_value=_qualifying_value(session, member_key, as_of, settings),
        downgrade_policy=settings.downgrade_policy,
        history=[TierChangeRead.model_validate(c) for c in history],
    )


def reevaluate_all(store: OperationalStore, as_of: datetime, progress: Progress | None = None) -> int:
    """Re-evaluate every member the program knows; moves down only under the ``periodic`` policy.

    Members are committed in batches of 200, so a long run holds no lock for long. Returns the changes made.
    """
    progress = progress or NullProgress()
    with store.session() as session:
        known = union(select(MemberTier.member_key), select(LoyaltyOrder.member_key)).subquery()
        members = sorted(session.scalars(select(known.c.member_key)))
        downgrade = program_settings(session).downgrade_policy == "periodic"
    progress.stage("re-evaluating member tiers", total=len(members))
    changed = 0
    for first in range(0, len(members), _BATCH):
        batch = members[first : first + _BATCH]
        with store.session() as session:
            for member_key in batch:
                change = evaluate_member(session, member_key, as_of, reason="periodic", allow_downgrade=downgrade)
                changed += change is not None
        progress.advance(len(batch))
    return changed
