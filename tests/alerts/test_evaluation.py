"""Precision and recall on the fixed-seed synthetic GMV series with injected anomalies (bench/alert_detection.py)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from patron.alerts.evaluation import (
    ANOMALY_FACTORS,
    SEED,
    SyntheticSeries,
    global_z_flags,
    score_detection,
    synthetic_gmv,
    weekday_robust_flags,
)


@pytest.fixture(scope="module")
def synthetic() -> SyntheticSeries:
    return synthetic_gmv(SEED)


def test_the_series_has_its_stated_shape(synthetic: SyntheticSeries) -> None:
    values = synthetic.series.values
    days = synthetic.series.days()

    assert (days[0], days[-1], values.size) == (date(2024, 1, 1), date(2025, 12, 31), 731)
    assert len(synthetic.anomalies) == len(synthetic.truth) == 24
    assert sorted(a.factor for a in synthetic.anomalies) == sorted(ANOMALY_FACTORS * 6)
    assert all(a.day >= date(2024, 2, 26) and a.day not in synthetic.festivals for a in synthetic.anomalies)
    # the festival peaks are real peaks: Double-11 is the biggest day of each year
    for year in (2024, 2025):
        in_year = [(v, d) for v, d in zip(values, days, strict=True) if d.year == year]
        assert max(in_year)[1] == date(year, 11, 11)
    assert values[365:].sum() > 1.2 * values[:365].sum()  # the level grows 60 % over the two years
    # same seed, same series
    assert np.array_equal(synthetic_gmv(SEED).series.values, values)


def test_score_detection_counts_hits_false_alarms_and_misses() -> None:
    d = [date(2024, 1, 1) + timedelta(days=i) for i in range(6)]

    score = score_detection(frozenset(d[:4]), frozenset(d[2:6]))
    empty = score_detection(frozenset(), frozenset(d[:1]))

    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 2, 2)
    assert (score.precision, score.recall, score.f1) == (0.5, 0.5, 0.5)
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)


def test_weekday_aware_detector_finds_the_injected_anomalies_and_beats_the_naive_one(
    synthetic: SyntheticSeries,
) -> None:
    weekday = score_detection(weekday_robust_flags(synthetic.series, excluded=synthetic.festivals), synthetic.truth)
    naive = score_detection(global_z_flags(synthetic.series, excluded=synthetic.festivals), synthetic.truth)

    assert weekday.precision >= 0.9  # measured 0.957 (22 of 23 flags)
    assert weekday.recall >= 0.9  # measured 0.917 (22 of 24)
    assert weekday.f1 > naive.f1 + 0.15  # naive: precision 1.0 but recall 0.583, F1 0.737
    assert weekday.recall > naive.recall


def test_without_the_festival_calendar_the_festivals_drown_the_anomalies(synthetic: SyntheticSeries) -> None:
    with_calendar = weekday_robust_flags(synthetic.series, excluded=synthetic.festivals)
    without = weekday_robust_flags(synthetic.series)

    false_alarms = without - synthetic.truth
    assert len(false_alarms) > 3 * len(with_calendar - synthetic.truth)
    assert len(false_alarms & synthetic.festivals) > len(false_alarms) / 2
