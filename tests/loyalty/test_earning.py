"""Earning rules: the pure evaluation, and recording orders, returns and events through the real ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.errors import ConflictError, ValidationError
from patron.loyalty import ledger
from patron.loyalty.earning import (
    BaseRate,
    CapRule,
    MultiplierRule,
    OrderIn,
    RuleSet,
    TierBenefit,
    evaluate_order,
    expiry_for,
    period_bounds,
)
from patron.loyalty.program import ReturnLineIn, dry_run, record_event, record_order, record_return
from patron.loyalty.program_events import EventIn, EventRuleSet, set_event_rule
from patron.loyalty.program_rules import (
    EarningRuleCreate,
    EarningRuleUpdate,
    ProgramSettingsUpdate,
    create_rule,
    update_rule,
    update_settings,
)
from patron.runtime import Runtime

MEMBER = "m00000000000000a1"
OTHER = "m00000000000000b2"
# 2026-06-18 is a Thursday: the 18th (member day) and inside 618.
PAID = datetime(2026, 6, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
BASE = RuleSet(BaseRate("base", Decimal(1)))


def order(key: str = "o-1", paid_at: datetime = PAID, member: str = MEMBER, **line: object) -> OrderIn:
    lines = [
        {"sku": "tea", "category": "food", "brand": "longjing", "amount": "10.99", **line},
        {"sku": "cup", "category": "home", "brand": "jingdezhen", "amount": "5.50", "quantity": 2},
    ]
    return OrderIn.model_validate({"order_key": key, "member_key": member, "paid_at": paid_at, "lines": lines})


# --- pure evaluation -----------------------------------------------------------------


def test_the_base_rate_rounds_down_per_line() -> None:
    explained = evaluate_order(order(), BASE)

    assert [line.points for line in explained.lines] == [10, 5]  # 10.99 -> 10, 5.50 -> 5, not 16
    assert explained.points == 15
    assert "floor per line" in explained.rounding


def test_without_a_base_rule_an_order_earns_nothing_and_says_why() -> None:
    explained = evaluate_order(order(), RuleSet(None))

    assert explained.points == 0
    assert explained.reasons == ["no enabled base rule: orders earn no points"]


def _rules(combine: str) -> RuleSet:
    return RuleSet(
        BaseRate("base", Decimal(2)),
        (
            MultiplierRule("food x3", "category", Decimal(3), match="food"),
            MultiplierRule("brand x1.5", "brand", Decimal("1.5"), match="longjing"),
            MultiplierRule("618", "campaign", Decimal(2), "618", PAID - timedelta(days=1), PAID + timedelta(days=1)),
            MultiplierRule("double-11", "campaign", Decimal(5), "1111", datetime(2026, 11, 11, tzinfo=UTC)),
            MultiplierRule("member day", "member_day", Decimal(2), day_of_month=18),
        ),
        combine=combine,  # type: ignore[arg-type]
    )


def test_multipliers_multiply_by_default_and_name_each_rule() -> None:
    explained = evaluate_order(order(), _rules("multiply"), tier=TierBenefit("gold", Decimal("1.2")))

    tea, cup = explained.lines
    assert {m.rule for m in tea.multipliers} == {"food x3", "brand x1.5", "618", "member day", "tier gold"}
    assert tea.factor == Decimal("21.6")  # 3 x 1.5 x 2 x 2 x 1.2; Double-11 is outside its window
    assert tea.points == int(Decimal("10.99") * 2 * Decimal("21.6"))  # 474.768 -> 474
    assert {m.rule for m in cup.multipliers} == {"618", "member day", "tier gold"}
    assert cup.points == int(Decimal("5.50") * 2 * Decimal("4.8"))  # 52.8 -> 52
    assert explained.points == 474 + 52
    assert any("member day: the 18th" in m.why for m in tea.multipliers)


def test_max_combining_takes_only_the_largest_multiplier() -> None:
    explained = evaluate_order(order(), _rules("max"))

    assert [line.factor for line in explained.lines] == [Decimal(3), Decimal(2)]
    assert explained.points == int(Decimal("10.99") * 6) + int(Decimal("5.50") * 4)


def test_a_weekday_member_day_uses_the_program_time_zone() -> None:
    thursday = RuleSet(BaseRate("b", Decimal(1)), (MultiplierRule("thu", "member_day", Decimal(2), weekday=3),))
    late_wednesday_utc = datetime(2026, 6, 17, 17, 0, tzinfo=UTC)  # already Thursday 01:00 in Shanghai

    assert evaluate_order(order(paid_at=late_wednesday_utc), thursday).points == 21 + 11
    assert evaluate_order(order(paid_at=late_wednesday_utc - timedelta(hours=2)), thursday).points == 15


def test_caps_cut_the_order_to_what_is_left_in_the_period() -> None:
    rules = RuleSet(BASE.base, caps=(CapRule("day", "day", 100), CapRule("month", "month", 1000)))

    explained = evaluate_order(order(), rules, earned_in={"day": 92, "month": 10})

    assert explained.uncapped_points == 15
    assert explained.points == 8
    assert [(c.period, c.allowed) for c in explained.caps] == [("day", 8), ("month", 990)]
    assert "capped from 15 to 8" in explained.reasons


def test_periods_are_local_days_weeks_from_monday_and_months() -> None:
    day = period_bounds("day", PAID, "Asia/Shanghai")
    week = period_bounds("week", PAID, "Asia/Shanghai")
    month = period_bounds("month", PAID, "Asia/Shanghai")

    assert day == (datetime(2026, 6, 17, 16, tzinfo=UTC), datetime(2026, 6, 18, 16, tzinfo=UTC))
    assert week == (datetime(2026, 6, 14, 16, tzinfo=UTC), datetime(2026, 6, 21, 16, tzinfo=UTC))
    assert month == (datetime(2026, 5, 31, 16, tzinfo=UTC), datetime(2026, 6, 30, 16, tzinfo=UTC))


def test_points_expire_at_the_start_of_the_month_after_twelve_months() -> None:
    assert expiry_for(datetime(2026, 3, 15, tzinfo=UTC), 12, "UTC") == datetime(2027, 4, 1, tzinfo=UTC)
    assert expiry_for(datetime(2026, 12, 31, 20, tzinfo=UTC), 12, "Asia/Shanghai") == datetime(
        2028, 1, 31, 16, tzinfo=UTC
    )  # 2027-01-01 04:00 local: expires 2028-02-01 local
    assert expiry_for(PAID, 0, "UTC") is None


def test_line_ids_must_be_unique() -> None:
    with pytest.raises(ValueError, match="line_id must be unique"):
        OrderIn.model_validate(
            {
                "order_key": "o",
                "member_key": MEMBER,
                "paid_at": PAID,
                "lines": [{"line_id": "a", "sku": "x", "amount": "1"}, {"line_id": "a", "sku": "y", "amount": "1"}],
            }
        )


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.decimals(min_value=0, max_value=10_000, places=2), min_size=1, max_size=8),
    rate=st.decimals(min_value=Decimal("0.01"), max_value=10, places=2),
)
def test_an_order_earns_the_sum_of_its_rounded_down_lines(amounts: list[Decimal], rate: Decimal) -> None:
    lines = [{"sku": f"s{i}", "amount": str(a)} for i, a in enumerate(amounts)]
    placed = OrderIn.model_validate({"order_key": "p", "member_key": MEMBER, "paid_at": PAID, "lines": lines})

    explained = evaluate_order(placed, RuleSet(BaseRate("b", rate)))

    assert explained.points == sum(int(a * rate) for a in amounts)
    assert 0 <= sum(amounts) * rate - explained.points < len(amounts)


# --- recording through the ledger ------------------------------------------------------


def _program(runtime: Runtime, **settings: object) -> None:
    store = runtime.store
    create_rule(store, EarningRuleCreate(name="1 per yuan", kind="base", points_per_unit=Decimal(1)), "test")
    update_settings(store, ProgramSettingsUpdate.model_validate(settings), "test")


def test_an_order_earns_pending_points_once_and_a_retry_replays(runtime: Runtime) -> None:
    _program(runtime)
    paid = datetime.now(UTC) - timedelta(hours=1)

    first = record_order(runtime.store, order(paid_at=paid), "k1", "test")
    retry = record_order(runtime.store, order(paid_at=paid), "k1", "test")
    other_key = record_order(runtime.store, order(paid_at=paid), "k2", "test")

    assert first.points == 15 and not first.replayed
    assert retry.replayed and retry.points == 15
    assert other_key.already_recorded and other_key.points == 15
    assert first.pending_until == paid + timedelta(days=7)
    with runtime.store.session() as session:
        balance = ledger.balance(session, MEMBER)
    assert (balance.pending, balance.available) == (15, 0)


def test_an_order_recorded_after_its_points_would_have_expired_earns_nothing(runtime: Runtime) -> None:
    _program(runtime, expiry_months=12)
    paid = datetime.now(UTC) - timedelta(days=800)

    recorded = record_order(runtime.store, order(paid_at=paid), "late", "test")

    assert recorded.points == 0 and recorded.explanation.points == 15  # what it would have earned, in time
    with runtime.store.session() as session:
        balance = ledger.balance(session, MEMBER)
    assert (balance.pending, balance.available, balance.lifetime_earned) == (0, 0, 0)


def test_the_same_key_with_another_order_is_a_conflict(runtime: Runtime) -> None:
    _program(runtime)
    record_order(runtime.store, order("o-1"), "k", "test")

    with pytest.raises(ConflictError):
        record_order(runtime.store, order("o-2"), "k", "test")


def test_a_dry_run_explains_without_writing(runtime: Runtime) -> None:
    _program(runtime)
    create_rule(runtime.store, EarningRuleCreate(name="cap", kind="cap", period="day", max_points=10), "test")

    with runtime.store.session() as session:
        explained = dry_run(session, order())
        balance = ledger.balance(session, MEMBER)

    assert (explained.uncapped_points, explained.points) == (15, 10)
    assert balance.lifetime_earned == 0


def test_a_daily_cap_counts_points_already_earned_that_day(runtime: Runtime) -> None:
    _program(runtime)
    create_rule(runtime.store, EarningRuleCreate(name="cap", kind="cap", period="day", max_points=20), "test")
    paid = datetime.now(UTC)

    first = record_order(runtime.store, order("o-1", paid), "k1", "test")
    second = record_order(runtime.store, order("o-2", paid), "k2", "test")
    third = record_order(runtime.store, order("o-3", paid), "k3", "test")

    assert [first.points, second.points, third.points] == [15, 5, 0]


def test_a_partial_return_keeps_points_in_proportion_and_a_full_return_reverses_all(runtime: Runtime) -> None:
    _program(runtime, return_window_days=0)
    placed = record_order(runtime.store, order("o-r", datetime.now(UTC) - timedelta(minutes=1)), "k", "test")
    assert placed.points == 15

    partial = record_return(runtime.store, "o-r", [ReturnLineIn(line_id="2", quantity=1)], "r1", "test")
    rest = record_return(runtime.store, "o-r", None, "r2", "test")

    # one of the two cups (5.50 for 2) is 2.75 of 16.49: floor(15 x 13.74 / 16.49) = floor(12.498) = 12 kept
    assert (partial.returned_spend, partial.points_kept, partial.points_reversed) == (Decimal("2.75"), 12, 3)
    assert (rest.status, rest.points_kept, rest.points_reversed) == ("returned", 0, 12)
    with runtime.store.session() as session:
        assert ledger.balance(session, MEMBER).available == 0
    with pytest.raises(ConflictError, match="returned in full"):
        record_return(runtime.store, "o-r", None, "r3", "test")


def test_returning_more_units_than_the_line_has_names_the_field(runtime: Runtime) -> None:
    _program(runtime)
    record_order(runtime.store, order("o-q"), "k", "test")
    with pytest.raises(ValidationError) as caught:
        record_return(runtime.store, "o-q", [ReturnLineIn(line_id="2", quantity=3)], "r", "test")
    assert caught.value.field == "lines.0.quantity"


def test_rules_refuse_fields_of_another_kind_and_missing_fields(runtime: Runtime) -> None:
    store = runtime.store
    cases = [
        ({"name": "a", "kind": "base", "points_per_unit": 1, "period": "day"}, "period"),
        ({"name": "b", "kind": "multiplier", "scope": "category", "multiplier": 2}, "match"),
        ({"name": "c", "kind": "multiplier", "scope": "campaign", "multiplier": 2}, "starts_at"),
        ({"name": "d", "kind": "multiplier", "scope": "member_day", "multiplier": 2}, "day_of_month"),
        ({"name": "e", "kind": "cap", "period": "week"}, "max_points"),
    ]
    for fields, field in cases:
        with pytest.raises(ValidationError) as caught:
            create_rule(store, EarningRuleCreate.model_validate(fields), "test")
        assert caught.value.field == field, fields
    _program(runtime)
    with pytest.raises(ConflictError, match="enabled already"):
        create_rule(store, EarningRuleCreate(name="2 per yuan", kind="base", points_per_unit=Decimal(2)), "test")
    rule = create_rule(
        store, EarningRuleCreate(name="off", kind="base", points_per_unit=Decimal(2), enabled=False), "t"
    )
    with pytest.raises(ValidationError) as caught:
        update_rule(store, rule.id, EarningRuleUpdate(scope="brand"))
    assert caught.value.field == "scope"


def test_event_rules_pay_once_per_period(runtime: Runtime) -> None:
    store = runtime.store
    set_event_rule(store, "sign_up", EventRuleSet(points=100), "test")
    set_event_rule(store, "daily_check_in", EventRuleSet(points=5, streak_days=3, streak_bonus=20), "test")
    set_event_rule(store, "review", EventRuleSet(points=10, daily_limit=2), "test")
    set_event_rule(store, "birthday", EventRuleSet(points=50), "test")
    now = datetime.now(UTC)

    def event(key: str, name: str, at: datetime = now, **extra: object) -> tuple[bool, int, str]:
        data = EventIn.model_validate({"member_key": MEMBER, "event": name, "occurred_at": at, **extra})
        outcome = record_event(store, data, key, "test")
        return outcome.awarded, outcome.points, outcome.reason

    assert event("s1", "sign_up")[:2] == (True, 100)
    assert event("s2", "sign_up") == (False, 0, "already awarded for once")
    checks = [event(f"c{d}", "daily_check_in", now + timedelta(days=d))[:2] for d in range(4)]
    assert checks == [(True, 5), (True, 5), (True, 25), (True, 5)]
    reviews = [event(f"r{i}", "review", reference=f"rev-{i}")[:2] for i in range(3)]
    assert reviews == [(True, 10), (True, 10), (False, 0)]
    # the birthday month is the program's (default Asia/Shanghai): on a month's last evening UTC it is the next
    birthday = date(1990, now.astimezone(ZoneInfo("Asia/Shanghai")).month, 1)
    assert event("b1", "birthday", birthday=birthday.isoformat())[:2] == (True, 50)
    assert event("b2", "birthday", now + timedelta(seconds=1), birthday=birthday.isoformat())[0] is False
    with runtime.store.session() as session:
        assert ledger.balance(session, MEMBER).available == 100 + 40 + 20 + 50


def test_the_first_order_pays_the_first_order_event(runtime: Runtime) -> None:
    _program(runtime)
    set_event_rule(runtime.store, "first_order", EventRuleSet(points=30), "test")

    first = record_order(runtime.store, order("o-1"), "k1", "test")
    second = record_order(runtime.store, order("o-2"), "k2", "test")

    assert first.first_order is not None and first.first_order.points == 30
    assert second.first_order is not None and not second.first_order.awarded
