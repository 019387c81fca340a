"""The seasonal baseline against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from patron.forecast.baseline import seasonal_baseline


def _by_hand(values: list[float], origin: int, horizon: int, weeks: int = 4) -> list[float]:
    """For each day after ``origin``: the mean of the ``weeks`` latest days up to the origin on its weekday."""
    out = []
    for target in range(origin + 1, origin + horizon + 1):
        same = [t for t in range(origin, -1, -1) if (target - t) % 7 == 0][:weeks]
        out.append(sum(values[t] for t in same) / len(same) if same else 0.0)
    return out


def test_the_mean_of_the_same_weekday_over_the_last_four_weeks() -> None:
    rng = np.random.default_rng(1)
    units = rng.poisson(5.0, size=(3, 45)).astype(np.float64)

    forecast = seasonal_baseline(units, 17)

    assert forecast.shape == (3, 17)
    for row in range(3):
        assert forecast[row] == pytest.approx(_by_hand(units[row].tolist(), 44, 17))


def test_worked_example() -> None:
    units = np.arange(30, dtype=np.float64)[None, :]  # day t sold t units

    forecast = seasonal_baseline(units, 8)[0]

    # day 30 shares its weekday with days 23, 16, 9 and 2; day 36 with 29, 22, 15 and 8
    assert forecast[0] == (23 + 16 + 9 + 2) / 4 == 12.5
    assert forecast[6] == (29 + 22 + 15 + 8) / 4
    assert forecast[7] == forecast[0]  # the weekly profile repeats


def test_short_history_uses_the_weeks_that_exist_and_none_gives_zero() -> None:
    units = np.array([[float(v) for v in range(1, 11)]])  # ten days only

    forecast = seasonal_baseline(units, 7)[0]

    assert forecast.tolist() == pytest.approx(_by_hand(units[0].tolist(), 9, 7))
    assert forecast[0] == units[0, 3]  # day 10: only day 3 shares its weekday
    assert seasonal_baseline(np.zeros((2, 0)), 3).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_an_earlier_origin_reads_nothing_after_it() -> None:
    rng = np.random.default_rng(2)
    units = rng.poisson(3.0, size=(2, 60)).astype(np.float64)
    changed = units.copy()
    changed[:, 41:] = 1000.0

    assert np.array_equal(seasonal_baseline(units, 28, origin=40), seasonal_baseline(changed, 28, origin=40))
    assert seasonal_baseline(units, 28, origin=40)[1].tolist() == pytest.approx(_by_hand(units[1].tolist(), 40, 28))
