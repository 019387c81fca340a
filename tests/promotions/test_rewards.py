"""The rewards catalog: exchanges spend points, issue coupons, and never oversell under concurrency.

Runs on SQLite, and on PostgreSQL when PATRON_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from patron.errors import ConflictError, ValidationError
from patron.loyalty import ledger
from patron.promotions.coupons import member_coupons, write_once
from patron.promotions.rewards import create_reward, exchange_reward, get_reward, list_rewards, update_reward
from patron.promotions.schemas import RewardCreate, RewardUpdate
from patron.runtime import Runtime
from tests.promotions.test_coupons import make_template

CLIENTS = 32


def funded_member(runtime: Runtime, points: int) -> str:
    member_key = "m" + secrets.token_hex(8)
    with runtime.store.session() as session:
        ledger.earn(
            session,
            member_key=member_key,
            points=points,
            source="test",
            reference=f"seed-{member_key}",
            expires_at=None,
            pending_until=None,
            actor="test",
        )
    return member_key


def reward(runtime: Runtime, **fields: object) -> int:
    data = RewardCreate.model_validate(
        {"name": f"r-{secrets.token_hex(3)}", "kind": "gift", "points_cost": 100, **fields}
    )
    with runtime.store.session() as session:
        return create_reward(session, data, "test").id


def exchange(runtime: Runtime, reward_id: int, member_key: str) -> str:
    try:
        with runtime.store.session() as session:
            exchange_reward(session, reward_id, member_key, actor="test")
        return "ok"
    except ConflictError as exc:
        return str(exc)


def test_a_coupon_reward_spends_points_and_issues_a_coupon(runtime: Runtime) -> None:
    make_template(runtime, "R10")
    reward_id = reward(runtime, kind="coupon", template_code="R10", points_cost=300, stock=5)
    buyer = funded_member(runtime, 1000)

    with runtime.store.session() as session:
        done = exchange_reward(session, reward_id, buyer, actor="test")
    with runtime.store.session() as session:
        left = ledger.balance(session, buyer).available
        coupons = member_coupons(session, buyer)
        entry = get_reward(session, reward_id)

    assert (done.points, done.stock_left, left) == (300, 4, 700)
    assert [c.code for c in coupons] == [done.coupon_code]
    assert coupons[0].template_code == "R10"
    assert (entry.stock, entry.exchanged) == (4, 1)


def test_too_few_points_rolls_the_stock_back(runtime: Runtime) -> None:
    reward_id = reward(runtime, stock=1, points_cost=500)
    poor = funded_member(runtime, 100)

    result = exchange(runtime, reward_id, poor)

    assert "available" in result or "points" in result, result
    with runtime.store.session() as session:
        assert get_reward(session, reward_id).stock == 1


def test_rewards_are_listed_and_changed_and_a_coupon_reward_needs_a_template(runtime: Runtime) -> None:
    reward_id = reward(runtime, stock=3)
    with runtime.store.session() as session:
        changed = update_reward(session, reward_id, RewardUpdate(active=False, stock=10))
        listed = list_rewards(session, active_only=True)

    assert (changed.active, changed.stock) == (False, 10)
    assert reward_id not in [r.id for r in listed]
    with pytest.raises(ValueError, match="template_code"):
        RewardCreate(name="x", kind="coupon", points_cost=1)
    with runtime.store.session() as session, pytest.raises(ValidationError):
        update_reward(session, reward_id, RewardUpdate(points_cost=None))
    assert exchange(runtime, reward_id, funded_member(runtime, 500)).endswith("is not offered")


def test_stock_is_never_oversold_under_concurrent_clients(runtime: Runtime) -> None:
    reward_id = reward(runtime, stock=7)
    buyers = [funded_member(runtime, 100) for _ in range(CLIENTS)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda m: exchange(runtime, reward_id, m), buyers))

    assert results.count("ok") == 7
    assert all("out of stock" in r for r in results if r != "ok")
    with runtime.store.session() as session:
        entry = get_reward(session, reward_id)
        spent = [ledger.balance(session, m).available for m in buyers]
    assert (entry.stock, entry.exchanged) == (0, 7)
    assert sorted(spent) == [0] * 7 + [100] * (CLIENTS - 7)


def test_one_member_racing_with_one_key_exchanges_once_and_within_their_limit(runtime: Runtime) -> None:
    limited = reward(runtime, per_member_limit=2)
    keyed = reward(runtime)
    buyer = funded_member(runtime, 100 * CLIENTS)

    with ThreadPoolExecutor(CLIENTS) as pool:
        by_limit = list(pool.map(lambda _: exchange(runtime, limited, buyer), range(CLIENTS)))

    def keyed_exchange(_: int) -> tuple[dict[str, object], bool]:
        def action(session: object) -> object:
            return exchange_reward(session, keyed, buyer, actor="test")  # type: ignore[arg-type]

        return write_once(runtime.store, "reward.exchange", "same-key", {"reward": keyed, "m": buyer}, action)  # type: ignore[arg-type]

    with ThreadPoolExecutor(CLIENTS) as pool:
        by_key = list(pool.map(keyed_exchange, range(CLIENTS)))

    assert by_limit.count("ok") == 2
    assert len({str(response) for response, _ in by_key}) == 1
    assert [replayed for _, replayed in by_key].count(False) == 1
    with runtime.store.session() as session:
        assert ledger.balance(session, buyer).available == 100 * CLIENTS - 300
        assert get_reward(session, keyed).exchanged == 1
