"""The alert conditions on small hand-made series, against figures worked out by hand or with plain numpy."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from patron.alerts.calendar import festival_days
from patron.alerts.detection import (
    DailySeries,
    leave_one_out_medians,
    pct_change_finding,
    robust_z_finding,
    threshold_finding,
)

MONDAY = date(2024, 1, 1)


def series(*values: float, start: date = MONDAY) -> DailySeries:
    return DailySeries(start, np.asarray(values, dtype=np.float64))


def day(i: int) -> date:
    return MONDAY + timedelta(days=i)


# --- threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "fires_on"),
    [("<", [0, 3]), ("<=", [0, 1, 3]), (">", [2]), (">=", [1, 2])],
)
def test_threshold_fires_on_the_days_the_operator_selects(op: str, fires_on: list[int]) -> None:
    values = series(5, 10, 15, 0)

    fired = [i for i in range(4) if threshold_finding(values, day(i), op, 10).fired]  # type: ignore[arg-type]

    assert fired == fires_on


def test_threshold_reports_value_and_limit_and_a_day_outside_the_series_is_not_judged() -> None:
    values = series(7.5)

    inside = threshold_finding(values, MONDAY, "<", 10)
    outside = threshold_finding(values, day(1), "<", 10)

    assert (inside.fired, inside.value, inside.expected) == (True, 7.5, 10)
    assert not outside.fired and outside.value is None and "no data" in (outside.reason or "")


# --- percentage change ----------------------------------------------------------------


def test_pct_change_against_the_previous_day() -> None:
    values = series(200, 100, 150, 150)

    drops = [pct_change_finding(values, day(i), "<", -30, "previous_day") for i in range(1, 4)]

    assert [f.score for f in drops] == pytest.approx([-50.0, 50.0, 0.0])
    assert [f.fired for f in drops] == [True, False, False]
    assert [f.expected for f in drops] == [200, 100, 150]


def test_pct_change_against_the_same_weekday_a_week_earlier() -> None:
    values = series(*range(100, 114))  # a rising fortnight: each day +1

    finding = pct_change_finding(values, day(13), ">=", 6.0, "same_weekday")

    assert finding.expected == 106 and finding.value == 113
    assert finding.score == pytest.approx(100 * 7 / 106)
    assert finding.fired


def test_pct_change_from_zero_or_without_a_base_day_is_not_judged() -> None:
    values = series(0, 50)

    from_zero = pct_change_finding(values, day(1), ">", 10, "previous_day")
    no_base = pct_change_finding(values, day(0), ">", 10, "previous_day")
    no_week = pct_change_finding(values, day(1), ">", 10, "same_weekday")

    assert not from_zero.fired and "is 0" in (from_zero.reason or "")
    assert not no_base.fired and no_base.reason and not no_week.fired and no_week.reason


def test_pct_change_against_a_negative_base_uses_its_size() -> None:
    finding = pct_change_finding(series(-50, -25), day(1), ">", 40, "previous_day")

    assert finding.score == pytest.approx(50.0) and finding.fired


# --- weekday-aware robust z, MAD of the same weekday ---------------------------------


def weekly(weeks: list[list[float]]) -> DailySeries:
    """Whole weeks, Monday first."""
    return series(*[v for week in weeks for v in week])


def test_same_weekday_z_matches_the_formula_on_a_hand_made_history() -> None:
    # Mondays 100, 104, 96, 102, 98, 110, 90, 100 then 130; other days 1.
    mondays = [100, 104, 96, 102, 98, 110, 90, 100]
    weeks = [[m, 1, 1, 1, 1, 1, 1] for m in mondays] + [[130, 1, 1, 1, 1, 1, 1]]
    judged = day(56)
    median = np.median(mondays)  # 100
    mad = np.median(np.abs(np.asarray(mondays) - median))  # deviations 0 4 4 2 2 10 10 0 -> 3
    expected = 0.6745 * (130 - median) / mad

    finding = robust_z_finding(weekly(weeks), judged, mad_from="same_weekday")

    assert (median, mad) == (100, 3)
    assert finding.score == pytest.approx(expected)  # 6.745
    assert finding.expected == 100 and finding.fired


@pytest.mark.parametrize(("value", "direction", "fires"), [
    (130, "up", True), (130, "down", False), (130, "both", True),
    (70, "up", False), (70, "down", True), (70, "both", True),
    (105, "both", False),  # z = 1.12
])  # fmt: skip
def test_direction_selects_spikes_drops_or_both(value: float, direction: str, fires: bool) -> None:
    mondays = [100, 104, 96, 102, 98, 110, 90, 100]
    weeks = [[m, 1, 1, 1, 1, 1, 1] for m in mondays] + [[value, 1, 1, 1, 1, 1, 1]]

    finding = robust_z_finding(weekly(weeks), day(56), mad_from="same_weekday", direction=direction)  # type: ignore[arg-type]

    assert finding.fired is fires


def test_only_the_last_n_weeks_count() -> None:
    # Eight old Mondays at 1000 then four recent ones around 100: with weeks=4 the old ones are out of reach.
    mondays = [1000.0] * 8 + [100, 102, 98, 101]
    weeks = [[m, 5, 5, 5, 5, 5, 5] for m in mondays] + [[100, 5, 5, 5, 5, 5, 5]]

    narrow = robust_z_finding(weekly(weeks), day(84), weeks=4, mad_from="same_weekday")
    wide = robust_z_finding(weekly(weeks), day(84), weeks=12, mad_from="same_weekday")

    assert narrow.expected == pytest.approx(np.median([100, 102, 98, 101]))
    assert not narrow.fired
    # 12 weeks: median 1000 and MAD 0 (eight Mondays at 1000), so the mean absolute deviation scales it
    deviations = np.abs(np.asarray(mondays) - 1000.0)
    assert wide.expected == 1000.0
    assert wide.score == pytest.approx((100 - 1000) / (1.2533 * deviations.mean()))  # -2.39: not an anomaly
    assert not wide.fired


def test_too_little_history_is_a_reason_not_a_verdict() -> None:
    weeks = [[100, 1, 1, 1, 1, 1, 1]] * 3 + [[500, 1, 1, 1, 1, 1, 1]]

    finding = robust_z_finding(weekly(weeks), day(21), min_weeks=4)

    assert not finding.fired
    assert finding.reason == "needs 4 same-weekday days of history, has 3"


def test_mad_zero_falls_back_to_the_mean_absolute_deviation() -> None:
    # Mondays: six at 100, then 100 and 140. MAD = 0; MeanAD = 40 / 8 = 5 -> scale 1.2533 * 5.
    mondays = [100, 100, 100, 100, 100, 100, 100, 140]
    weeks = [[m, 1, 1, 1, 1, 1, 1] for m in mondays] + [[130, 1, 1, 1, 1, 1, 1]]

    finding = robust_z_finding(weekly(weeks), day(56), mad_from="same_weekday")

    assert finding.score == pytest.approx(30 / (1.2533 * 5))  # 4.79
    assert finding.fired


def test_a_constant_baseline_scores_zero_when_met_and_fires_without_a_score_when_left() -> None:
    # A shop closed on Sundays: every Sunday 0.
    weeks = [[10, 10, 10, 10, 10, 10, 0]] * 8
    closed = [*weeks, [10, 10, 10, 10, 10, 10, 0]]
    opened = [*weeks, [10, 10, 10, 10, 10, 10, 3]]

    still = robust_z_finding(weekly(closed), day(62), mad_from="same_weekday")
    changed = robust_z_finding(weekly(opened), day(62), mad_from="same_weekday")
    only_drops = robust_z_finding(weekly(opened), day(62), mad_from="same_weekday", direction="down")

    assert (still.fired, still.score) == (False, 0.0)
    assert changed.fired and changed.score is None and "constant baseline" in changed.detail
    assert not only_drops.fired


def test_excluded_days_are_neither_judged_nor_part_of_the_baseline() -> None:
    mondays = [100, 104, 96, 102, 98, 110, 90, 100]
    weeks = [[m, 1, 1, 1, 1, 1, 1] for m in mondays] + [[500, 1, 1, 1, 1, 1, 1]]
    values = weekly(weeks)
    festival = frozenset({day(7 * 5)})  # the Monday at 110

    skipped = robust_z_finding(values, day(56), mad_from="same_weekday", excluded=frozenset({day(56)}))
    without = robust_z_finding(values, day(56), mad_from="same_weekday", excluded=festival)

    kept = [m for i, m in enumerate(mondays) if i != 5]
    assert not skipped.fired and "excluded" in (skipped.reason or "")
    assert without.expected == pytest.approx(np.median(kept))
    assert without.detail.endswith("of 7 same weekdays")


# --- MAD over all weekdays, leave-one-out --------------------------------------------


def test_leave_one_out_medians_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    for n in range(2, 14):
        for draw in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float)):
            brute = [np.median(np.delete(draw, i)) for i in range(n)]

            assert leave_one_out_medians(draw) == pytest.approx(brute)


def test_all_weekdays_z_matches_a_plain_numpy_computation() -> None:
    rng = np.random.default_rng(11)
    level = np.array([100, 90, 95, 105, 120, 160, 140], dtype=float)  # a weekly profile
    history = (level * np.exp(rng.normal(0, 0.1, size=(8, 7)))).ravel()
    values = series(*history, 170.0)  # day 56 is a Monday
    # independent: for each weekday, each value minus the median of the other seven
    table = history.reshape(8, 7)
    deviations = [abs(table[w, d] - np.median(np.delete(table[:, d], w))) for d in range(7) for w in range(8)]
    expected = 0.6745 * (170.0 - np.median(table[:, 0])) / np.median(deviations)

    finding = robust_z_finding(values, day(56))

    assert finding.score == pytest.approx(expected)
    assert finding.fired == bool(abs(expected) > 3.5)


def test_all_weekdays_scale_is_steadier_than_the_same_weekday_one_on_pure_noise() -> None:
    """On Gaussian noise |z| > 3.5 should be rare; the same-weekday MAD of 8 values makes it common."""
    noise = series(*np.random.default_rng(5).normal(1000, 100, size=7 * 60))
    judged = noise.days()[56:]

    pooled = sum(robust_z_finding(noise, d, min_weeks=8).fired for d in judged)
    same = sum(robust_z_finding(noise, d, min_weeks=8, mad_from="same_weekday").fired for d in judged)

    assert pooled / len(judged) < 0.01
    assert same / len(judged) > 0.02
    assert same > 4 * pooled


def test_festival_days_are_the_618_and_double_11_windows() -> None:
    days = festival_days(date(2024, 1, 1), date(2025, 6, 5))

    assert len(days) == 18 + 11 + 5
    assert date(2024, 6, 18) in days and date(2024, 6, 19) not in days
    assert date(2024, 11, 1) in days and date(2024, 11, 11) in days and date(2024, 10, 31) not in days
    assert max(days) == date(2025, 6, 5)
