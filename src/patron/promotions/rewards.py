"""The rewards catalog: points exchanged for coupons or gifts, with stock and per-member limits.

An exchange is one transaction: the conditional stock decrement comes first
(``UPDATE rewards SET stock = stock - 1 WHERE stock > 0``), which locks the
reward's row until commit, so concurrent exchanges of one reward queue behind
each other and neither the stock nor a member's limit can be overrun; then the
points are spent through the ledger (a ConflictError when the member has too
few, which rolls the stock back), the coupon is issued and the exchange is
recorded. Functions taking a Session never commit.
"""

from __future__ import annotations

import secrets

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.loyalty import ledger
from patron.promotions.coupons import issue_coupon
from patron.promotions.models import PromotionTemplate, Reward, RewardExchange
from patron.promotions.schemas import ExchangeRead, RewardCreate, RewardRead, RewardUpdate
from patron.promotions.templates import template_row

__all__ = ["REWARD_SINK", "create_reward", "exchange_reward", "get_reward", "list_rewards", "update_reward"]

REWARD_SINK = "rewards"


def _read(session: Session, reward: Reward) -> RewardRead:
    template_code = None
    if reward.template_id is not None:
        template_code = session.scalar(select(PromotionTemplate.code).where(PromotionTemplate.id == reward.template_id))
    return RewardRead(
        id=reward.id,
        name=reward.name,
        kind=reward.kind,
        points_cost=reward.points_cost,
        template_code=template_code,
        stock=reward.stock,
        per_member_limit=reward.per_member_limit,
        active=reward.active,
        exchanged=reward.exchanged,
        created_at=reward.created_at,
    )


def _reward(session: Session, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id, populate_existing=True)
    if reward is None:
        raise NotFoundError(f"no reward {reward_id}")
    return reward


def _flush_named(session: Session, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a reward named {name!r} exists already") from exc


def create_reward(session: Session, data: RewardCreate, created_by: str) -> RewardRead:
    """Add a catalog entry; a coupon reward names the template its coupons come from."""
    template_id = None if data.template_code is None else template_row(session, data.template_code).id
    if session.scalar(select(Reward.id).where(Reward.name == data.name)) is not None:
        raise ConflictError(f"a reward named {data.name!r} exists already")
    reward = Reward(
        name=data.name,
        kind=data.kind,
        points_cost=data.points_cost,
        template_id=template_id,
        stock=data.stock,
        per_member_limit=data.per_member_limit,
        active=data.active,
        exchanged=0,
        created_by=created_by[:128],
    )
    session.add(reward)
    _flush_named(session, data.name)
    return _read(session, reward)


def list_rewards(session: Session, *, active_only: bool = False) -> list[RewardRead]:
    """The catalog by id."""
    query = select(Reward).order_by(Reward.id)
    if active_only:
        query = query.where(Reward.active.is_(True))
    return [_read(session, reward) for reward in session.scalars(query)]


def get_reward(session: Session, reward_id: int) -> RewardRead:
    """One catalog entry."""
    return _read(session, _reward(session, reward_id))


def update_reward(session: Session, reward_id: int, changes: RewardUpdate) -> RewardRead:
    """Change name, cost, stock, limit or whether it is offered."""
    reward = _reward(session, reward_id)
    given = changes.model_dump(exclude_unset=True)
    for name in ("name", "points_cost", "active"):
        if name in given and given[name] is None:
            raise ValidationError(f"{name} cannot be removed", field=name)
    for name, value in given.items():
        setattr(reward, name, value)
    reward.updated_at = utcnow()
    _flush_named(session, reward.name)
    return _read(session, reward)


def _take_stock(session: Session, reward_id: int) -> Reward:
    taken = session.execute(
        update(Reward)
        .where(Reward.id == reward_id, Reward.active.is_(True), or_(Reward.stock.is_(None), Reward.stock > 0))
        .values(
            stock=case((Reward.stock.is_(None), None), else_=Reward.stock - 1),
            exchanged=Reward.exchanged + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    reward = _reward(session, reward_id)
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        if not reward.active:
            raise ConflictError(f"reward {reward.name!r} is not offered")
        raise ConflictError(f"reward {reward.name!r} is out of stock")
    return reward


def exchange_reward(
    session: Session, reward_id: int, member_key: str, *, actor: str, reference: str | None = None
) -> ExchangeRead:
    """Spend the member's points on a reward: stock, limit and points are checked in one transaction."""
    reward = _take_stock(session, reward_id)
    if reward.per_member_limit is not None:
        had = session.scalar(
            select(func.count())
            .select_from(RewardExchange)
            .where(RewardExchange.reward_id == reward.id, RewardExchange.member_key == member_key)
        )
        if (had or 0) >= reward.per_member_limit:
            raise ConflictError(f"member {member_key} has exchanged {reward.name!r} {had} times (the limit)")
    reference = reference or f"reward-{reward.id}-{secrets.token_hex(8)}"
    ledger.redeem(
        session,
        member_key=member_key,
        points=reward.points_cost,
        sink=REWARD_SINK,
        reference=reference,
        actor=actor,
        memo=f"reward {reward.name}"[:200],
    )
    coupon_code = None
    if reward.kind == "coupon":
        template_code = _read(session, reward).template_code
        assert template_code is not None, "a coupon reward always has a template"
        coupon_code = issue_coupon(session, template_code, member_key, f"reward {reward.name}").code
    exchange = RewardExchange(
        reward_id=reward.id,
        member_key=member_key,
        points=reward.points_cost,
        coupon_code=coupon_code,
        reference=reference,
        actor=actor[:128],
    )
    session.add(exchange)
    session.flush()
    return ExchangeRead(
        id=exchange.id,
        reward_id=reward.id,
        reward_name=reward.name,
        member_key=member_key,
        points=reward.points_cost,
        coupon_code=coupon_code,
        reference=reference,
        stock_left=reward.stock,
        created_at=exchange.created_at,
    )
