"""check_alerts on a built shop whose daily orders are planned: what fires, once, and what is listed."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from patron.alerts.models import Alert
from patron.alerts.schemas import AlertRead, AlertRuleCreate, AlertRuleUpdate
from patron.alerts.series import daily_kpis
from patron.alerts.service import check_alerts, create_rule, delete_rule, list_alerts, update_rule
from patron.analytics.artefacts import reader_for
from patron.errors import NotFoundError, ValidationError
from patron.runtime import Runtime
from tests.alerts.conftest import DAYS, LAST, SPIKE_DAY, START, ZERO_DAY, planned_daily


def rule(runtime: Runtime, **fields: Any) -> int:
    return create_rule(runtime, AlertRuleCreate.model_validate(fields), "cli:test").id


def last_days(n: int) -> list[date]:
    return [LAST - timedelta(days=i) for i in range(n - 1, -1, -1)]


def alerts_in_store(runtime: Runtime) -> int:
    with runtime.store.session() as sess:
        return sess.scalar(select(func.count()).select_from(Alert)) or 0


# --- the series -----------------------------------------------------------------------


def test_the_daily_series_is_the_plan_with_empty_days_as_zero(shop: Runtime) -> None:
    reader = reader_for(shop.settings.artefact_dir)

    series = daily_kpis(reader, START, LAST)

    gmv, orders = planned_daily("gmv"), planned_daily("orders")
    assert series["gmv"].days() == sorted(gmv)
    assert series["gmv"].values.tolist() == pytest.approx([gmv[d] for d in sorted(gmv)])
    assert series["orders"].values.tolist() == [orders[d] for d in sorted(orders)]
    for metric in ("gmv", "orders", "aov", "buyers", "repurchase_rate", "new_buyers", "returning_buyers"):
        assert series[metric].value(ZERO_DAY) == 0.0  # a day without orders is zero, not missing
    assert series["aov"].value(SPIKE_DAY) == pytest.approx(gmv[SPIKE_DAY] / orders[SPIKE_DAY])


# --- each kind on the shop -----------------------------------------------------------


def test_a_threshold_rule_fires_on_the_day_without_orders(shop: Runtime) -> None:
    rule_id = rule(shop, name="no orders", metric="orders", kind="threshold", op="<", value=1)
    orders = planned_daily("orders")
    expected = [d for d in last_days(7) if orders[d] < 1]

    fired = check_alerts(shop, days=7)

    assert expected == [ZERO_DAY]
    assert [(a.day, a.value, a.expected, a.rule_id) for a in fired] == [(ZERO_DAY, 0.0, 1.0, rule_id)]
    assert fired[0].message.startswith("no orders: orders = 0.00 on 2024-03-27")
    assert fired[0].delivery_status == "none" and fired[0].delivery_attempts == 0


def test_a_pct_change_rule_against_the_previous_day(shop: Runtime) -> None:
    rule(shop, name="gmv falls", metric="gmv", kind="pct_change", op="<", percent=-40)
    gmv = planned_daily("gmv")
    expected = {
        d: 100 * (gmv[d] - gmv[d - timedelta(days=1)]) / gmv[d - timedelta(days=1)]
        for d in last_days(21)
        if gmv[d - timedelta(days=1)] != 0
    }
    expected = {d: change for d, change in expected.items() if change < -40}

    fired = check_alerts(shop, days=21)

    assert ZERO_DAY in expected and ZERO_DAY + timedelta(days=1) not in expected  # from 0: undefined
    assert {a.day: a.score for a in fired} == pytest.approx(expected)


def test_a_pct_change_rule_against_the_same_weekday(shop: Runtime) -> None:
    rule(
        shop, name="orders double", metric="orders", kind="pct_change", op=">=", percent=100, compare_to="same_weekday"
    )
    orders = planned_daily("orders")
    week_before = SPIKE_DAY - timedelta(days=7)

    fired = check_alerts(shop, days=7)

    assert [a.day for a in fired] == [SPIKE_DAY]
    assert fired[0].expected == orders[week_before]
    assert fired[0].score == pytest.approx(100 * (orders[SPIKE_DAY] / orders[week_before] - 1))


def _same_weekday_history(metric: str, day: date, weeks: int) -> np.ndarray:
    daily = planned_daily(metric)
    return np.array([daily[day - timedelta(weeks=k)] for k in range(1, weeks + 1)])


def test_an_anomaly_rule_with_the_same_weekday_mad_scores_the_spike_as_numpy_does(shop: Runtime) -> None:
    rule(shop, name="orders spike", metric="orders", kind="anomaly", direction="up", mad_from="same_weekday")
    history = _same_weekday_history("orders", SPIKE_DAY, 8)
    median = np.median(history)
    z = 0.6745 * (planned_daily("orders")[SPIKE_DAY] - median) / np.median(np.abs(history - median))

    fired = check_alerts(shop)

    assert z > 3.5
    assert [(a.day, a.kind) for a in fired] == [(SPIKE_DAY, "anomaly")]
    assert fired[0].expected == median and fired[0].score == pytest.approx(z)


def pooled_z(metric: str, day: date, weeks: int) -> float:
    """The all-weekdays score by brute force: leave-one-out deviations of every weekday of the window."""
    daily = planned_daily(metric)
    # lag r + 7j (r = 1..6) are the other weekdays, lags 7, 14, ... the judged one's
    window = [[daily[day - timedelta(days=r + 7 * j + (7 if r == 0 else 0))] for j in range(weeks)] for r in range(7)]
    deviations = [abs(v[i] - np.median(np.delete(np.array(v), i))) for v in window for i in range(weeks)]
    return float(0.6745 * (daily[day] - np.median(window[0])) / np.median(deviations))


def test_an_anomaly_rule_pooling_all_weekdays_scores_as_a_brute_force_computation(shop: Runtime) -> None:
    rule(shop, name="gmv anomaly", metric="gmv", kind="anomaly", weeks=6, min_weeks=5)
    z = pooled_z("gmv", SPIKE_DAY, 6)

    fired = check_alerts(shop)

    assert [a.day for a in fired] == [SPIKE_DAY]
    assert fired[0].score == pytest.approx(z)


def test_a_drop_to_zero_is_an_anomaly_downwards(shop: Runtime) -> None:
    rule(shop, name="gmv gone", metric="gmv", kind="anomaly", direction="down")
    z = pooled_z("gmv", ZERO_DAY, 8)

    fired = check_alerts(shop, days=7)

    assert z < -3.5
    assert [a.day for a in fired] == [ZERO_DAY]
    assert fired[0].score == pytest.approx(z)


# --- once per rule and day ------------------------------------------------------------


def test_rerunning_a_check_records_nothing_twice(shop: Runtime) -> None:
    rule(shop, name="no orders", metric="orders", kind="threshold", op="<", value=1)
    rule(shop, name="orders spike", metric="orders", kind="anomaly", direction="up")

    first = check_alerts(shop, days=7)
    again = check_alerts(shop, days=7)
    wider = check_alerts(shop, days=30)

    assert sorted(a.day for a in first) == [ZERO_DAY, SPIKE_DAY]
    assert again == []
    assert all(a.day < LAST - timedelta(days=6) for a in wider)  # only days the first check did not judge
    assert alerts_in_store(shop) == len(first) + len(wider)


def test_concurrent_checks_record_and_return_each_alert_once(shop: Runtime) -> None:
    rule(shop, name="no orders", metric="orders", kind="threshold", op="<", value=1)
    rule(shop, name="busy days", metric="orders", kind="threshold", op=">", value=6)
    results: list[list[AlertRead]] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(check_alerts(shop, days=28))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    orders = planned_daily("orders")
    expected = sum(orders[d] < 1 for d in last_days(28)) + sum(orders[d] > 6 for d in last_days(28))
    returned = [a.id for result in results for a in result]
    assert len(results) == 3
    assert len(returned) == len(set(returned)) == expected == alerts_in_store(shop)


def test_disabled_rules_do_not_fire_until_enabled(shop: Runtime) -> None:
    rule_id = rule(shop, name="no orders", metric="orders", kind="threshold", op="<", value=1, enabled=False)

    off = check_alerts(shop, days=7)
    update_rule(shop.store, rule_id, AlertRuleUpdate(enabled=True))
    on = check_alerts(shop, days=7)

    assert off == [] and [a.day for a in on] == [ZERO_DAY]


def test_alerts_outlive_their_rule(shop: Runtime) -> None:
    rule_id = rule(shop, name="no orders", metric="orders", kind="threshold", op="<", value=1)
    check_alerts(shop, days=7)

    delete_rule(shop.store, rule_id)
    page = list_alerts(shop.store)

    assert [(a.rule_id, a.rule_name, a.day) for a in page.items] == [(None, "no orders", ZERO_DAY)]


def test_checking_without_rules_or_a_build_or_with_a_bad_window(shop: Runtime, runtime: Runtime) -> None:
    assert check_alerts(shop) == []
    rule(runtime, name="no orders", metric="orders", kind="threshold", op="<", value=1)
    with pytest.raises(NotFoundError, match="no profiles built yet"):
        check_alerts(runtime)
    for days in (0, 367):
        with pytest.raises(ValidationError) as caught:
            check_alerts(shop, days=days)
        assert caught.value.field == "days"


# --- listing --------------------------------------------------------------------------


def test_listing_is_newest_first_paginated_and_filtered(shop: Runtime) -> None:
    busy = rule(shop, name="busy days", metric="orders", kind="threshold", op=">", value=6)
    rule(shop, name="big days", metric="gmv", kind="threshold", op=">", value=700)
    check_alerts(shop, days=DAYS)
    orders, gmv = planned_daily("orders"), planned_daily("gmv")
    busy_days = sorted((d for d in orders if orders[d] > 6), reverse=True)
    big_days = sorted((d for d in gmv if gmv[d] > 700), reverse=True)

    everything = list_alerts(shop.store, page_size=500)
    page_two = list_alerts(shop.store, page=2, page_size=5, rule_id=busy)
    by_metric = list_alerts(shop.store, metric="gmv", page_size=500)
    in_march = list_alerts(shop.store, start=date(2024, 3, 1), end=date(2024, 3, 31), page_size=500)

    assert everything.total == len(busy_days) + len(big_days)
    assert [a.day for a in everything.items] == sorted((a.day for a in everything.items), reverse=True)
    assert page_two.total == len(busy_days) and [a.day for a in page_two.items] == busy_days[5:10]
    assert [a.day for a in by_metric.items] == big_days
    assert {a.day for a in in_march.items} == {d for d in busy_days + big_days if d.month == 3}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page": 0}, "page"),
        ({"page_size": 501}, "page_size"),
        ({"start": date(2024, 3, 2), "end": date(2024, 3, 1)}, "start"),
    ],
)
def test_bad_listing_filters_name_the_field(runtime: Runtime, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        list_alerts(runtime.store, **kwargs)

    assert caught.value.field == field
