"""Tiers: immediate upgrades, downgrade policies, benefits, history and the re-evaluation job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from patron.errors import ConflictError
from patron.loyalty.earning import OrderIn
from patron.loyalty.program import record_order, record_return
from patron.loyalty.program_rules import EarningRuleCreate, ProgramSettingsUpdate, create_rule, update_settings
from patron.loyalty.tiers import (
    TierCreate,
    TierUpdate,
    create_tier,
    current_tier,
    delete_tier,
    list_tiers,
    member_tier,
    reevaluate_all,
    update_tier,
)
from patron.progress import NullProgress
from patron.runtime import Runtime

MEMBER = "m00000000000000c3"
NOW = datetime.now(UTC)


class Counting(NullProgress):
    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.done = 0

    def stage(self, description: str, total: int | None = None) -> None:
        self.stages.append((description, total))

    def advance(self, steps: int = 1) -> None:
        self.done += steps


def _order(key: str, amount: str, paid_at: datetime = NOW, member: str = MEMBER) -> OrderIn:
    return OrderIn.model_validate(
        {"order_key": key, "member_key": member, "paid_at": paid_at, "lines": [{"sku": "s", "amount": amount}]}
    )


def _program(runtime: Runtime, **settings: object) -> None:
    store = runtime.store
    create_rule(store, EarningRuleCreate(name="base", kind="base", points_per_unit=Decimal(1)), "test")
    update_settings(store, ProgramSettingsUpdate.model_validate(settings), "test")
    create_tier(store, TierCreate(code="silver", name="Silver", threshold=Decimal(100)))
    create_tier(
        store,
        TierCreate(
            code="gold",
            name="Gold 金卡",
            threshold=Decimal(1000),
            multiplier=Decimal("1.5"),
            coupons=["gold-welcome"],
            free_shipping=True,
        ),
    )


def test_an_order_that_crosses_a_threshold_upgrades_at_once(runtime: Runtime) -> None:
    _program(runtime)

    small = record_order(runtime.store, _order("o1", "50"), "k1", "test")
    silver = record_order(runtime.store, _order("o2", "60"), "k2", "test")
    gold = record_order(runtime.store, _order("o3", "900"), "k3", "test")
    boosted = record_order(runtime.store, _order("o4", "100"), "k4", "test")

    assert small.tier_change is None
    assert silver.tier_change is not None and (silver.tier_change.from_tier, silver.tier_change.to_tier) == (
        None,
        "silver",
    )
    assert gold.tier_change is not None and gold.tier_change.to_tier == "gold"
    assert gold.tier_change.value == Decimal(1010)
    assert [c["template"] for c in gold.tier_change.coupons] == ["gold-welcome"]
    assert boosted.points == 150  # the gold multiplier applies from the next order
    with runtime.store.session() as session:
        assert current_tier(session, MEMBER) == "gold"
        shown = member_tier(session, MEMBER)
    assert shown.tier is not None and shown.tier.free_shipping
    assert [(c.from_tier, c.to_tier, c.reason) for c in shown.history] == [
        ("silver", "gold", "upgrade"),
        (None, "silver", "upgrade"),
    ]


def test_spend_over_a_rolling_window_ignores_older_orders(runtime: Runtime) -> None:
    _program(runtime, tier_basis="spend", tier_window_days=30)

    record_order(runtime.store, _order("old", "90", NOW - timedelta(days=40)), "k1", "test")
    recent = record_order(runtime.store, _order("new", "20", NOW - timedelta(days=1)), "k2", "test")

    assert recent.tier_change is None
    with runtime.store.session() as session:
        assert member_tier(session, MEMBER).qualifying_value == Decimal(20)
    reached = record_order(runtime.store, _order("more", "80"), "k3", "test")
    assert reached.tier_change is not None and reached.tier_change.to_tier == "silver"


def test_on_return_policy_downgrades_when_a_return_drops_the_member_below(runtime: Runtime) -> None:
    _program(runtime, tier_basis="spend", downgrade_policy="on_return")
    record_order(runtime.store, _order("o1", "150"), "k1", "test")

    returned = record_return(runtime.store, "o1", None, "r1", "test")

    assert returned.tier_change is not None
    assert (returned.tier_change.from_tier, returned.tier_change.to_tier, returned.tier_change.reason) == (
        "silver",
        None,
        "on_return",
    )


@pytest.mark.parametrize(("policy", "after"), [("periodic", None), ("none", "silver"), ("on_return", "silver")])
def test_the_reevaluation_job_moves_down_only_under_the_periodic_policy(
    runtime: Runtime, policy: str, after: str | None
) -> None:
    _program(runtime, tier_basis="spend", tier_window_days=10, downgrade_policy=policy)
    record_order(runtime.store, _order("o1", "150"), "k1", "test")
    record_order(runtime.store, _order("o2", "10", member="m00000000000000d4"), "k2", "test")
    progress = Counting()

    changed = reevaluate_all(runtime.store, NOW + timedelta(days=11), progress)

    assert changed == (1 if policy == "periodic" else 0)
    assert progress.stages == [("re-evaluating member tiers", 2)] and progress.done == 2
    with runtime.store.session() as session:
        assert current_tier(session, MEMBER) == after
        history = member_tier(session, MEMBER).history
    assert history[0].reason == ("periodic" if policy == "periodic" else "upgrade")


def test_tier_codes_and_thresholds_are_unique_and_held_tiers_stay(runtime: Runtime) -> None:
    _program(runtime)
    store = runtime.store

    with pytest.raises(ConflictError, match="exists already"):
        create_tier(store, TierCreate(code="gold", name="x", threshold=Decimal(5)))
    with pytest.raises(ConflictError, match="threshold"):
        create_tier(store, TierCreate(code="bronze", name="x", threshold=Decimal(100)))
    assert update_tier(store, "gold", TierUpdate(threshold=Decimal(2000))).threshold == Decimal(2000)
    record_order(store, _order("o1", "150"), "k1", "test")
    with pytest.raises(ConflictError, match="hold tier"):
        delete_tier(store, "silver")
    delete_tier(store, "gold")
    with store.session() as session:
        assert [t.code for t in list_tiers(session)] == ["silver"]
