r"""Alert conditions on a daily KPI series, as small pure functions.

Each function looks at one day of a :class:`DailySeries` and returns a
:class:`Finding`. A day that cannot be judged (too little history, a zero
base) comes back with ``fired=False`` and a ``reason``, never an exception.

Threshold
    fires when ``x_d  op  value``.
Percentage change
    ``change = 100 * (x_d - x_b) / |x_b|`` with ``b = d - 1`` (previous day)
    or ``b = d - 7`` (same weekday a week earlier); fires when
    ``change  op  percent``. Undefined, so never fired, when ``x_b = 0``.
Weekday-aware robust z-score
    The baseline of day ``d`` is the same weekday over the previous ``N``
    weeks (default 8), ``B = {x_{d-7k} : k = 1..N}``, minus excluded days
    (festivals). With ``m = median(B)``,

    .. math:: z = 0.6745 \, (x_d - m) / \mathrm{MAD}

    the modified z-score of Iglewicz & Hoaglin (1993), "How to Detect and
    Handle Outliers", whose cut-off 3.5 is the default threshold; 0.6745 is
    the 0.75 quantile of the standard normal, so ``MAD / 0.6745`` estimates a
    standard deviation. It fires when ``|z| > threshold`` (or only above /
    below for direction ``up`` / ``down``). The MAD comes from one of:

    ``same_weekday``
        ``median(|B - m|)``: the MAD of the ``N`` baseline values. With
        N = 8 it is a noisy scale: on Gaussian noise ``|z| > 3.5`` happens on
        4.8 % of days.
    ``all_weekdays`` (default)
        the median, over every weekday of the ``N``-week window (those with at
        least ``min_weeks`` values), of each day's deviation from the median
        of the *other* days of its weekday. Seven times more deviations make
        a steadier scale, and leaving the day out makes each deviation behave
        like the judged day's own (whose baseline does not contain it), so the
        score is calibrated: on Gaussian noise ``|z| > 3.5`` happens on 0.23 %
        of days.

    ``MAD = 0`` (more than half the deviations are 0) falls back to the mean
    absolute deviation, ``z = (x_d - m) / (1.2533 * MeanAD)`` (1.2533 =
    sqrt(pi/2) makes it consistent for normal data; the rule IBM SPSS uses
    for the modified z-score). If that is 0 too, the baseline is constant: a
    day equal to it scores 0, a day off it fires with no finite score.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAD_CONSISTENCY",
    "MEAN_AD_CONSISTENCY",
    "Baseline",
    "DailySeries",
    "Direction",
    "Finding",
    "MadFrom",
    "Op",
    "compare",
    "leave_one_out_medians",
    "pct_change_finding",
    "robust_z_finding",
    "threshold_finding",
]

Op = Literal["<", "<=", ">", ">="]
Baseline = Literal["previous_day", "same_weekday"]
Direction = Literal["both", "up", "down"]
MadFrom = Literal["all_weekdays", "same_weekday"]

MAD_CONSISTENCY = 0.6745
MEAN_AD_CONSISTENCY = 1.2533
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LAG = {"previous_day": 1, "same_weekday": 7}


@dataclass(frozen=True)
class DailySeries:
    """One value per calendar day from ``start``, no gaps (a day without orders is 0)."""

    start: date
    values: NDArray[np.float64]

    @property
    def end(self) -> date:
        """The last day (the day before ``start`` for an empty series)."""
        return self.start + timedelta(days=len(self.values) - 1)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(len(self.values))]

    def value(self, day: date) -> float | None:
        """The value on ``day``, or None outside the series."""
        i = (day - self.start).days
        return float(self.values[i]) if 0 <= i < len(self.values) else None


@dataclass(frozen=True)
class Finding:
    """The verdict on one day.

    ``expected`` is the reference the value was compared with (the limit, the
    base day's value, the baseline median); ``score`` the change in percent or
    the robust z (None where it has no finite value); ``reason`` says why the
    day could not be judged; ``detail`` describes the comparison in words.
    """

    fired: bool
    value: float | None
    expected: float | None = None
    score: float | None = None
    reason: str | None = None
    detail: str = ""


def compare(left: float, op: Op, right: float) -> bool:
    return _OPS[op](left, right)


def _missing(day: date) -> Finding:
    return Finding(False, None, reason=f"no data for {day.isoformat()}")


def threshold_finding(series: DailySeries, day: date, op: Op, limit: float) -> Finding:
    """Fires when the day's value compares with ``limit`` as ``op`` says."""
    x = series.value(day)
    if x is None:
        return _missing(day)
    return Finding(compare(x, op, limit), x, expected=limit, detail=f"{op} {limit:,.4g}")


def pct_change_finding(series: DailySeries, day: date, op: Op, percent: float, baseline: Baseline) -> Finding:
    """Fires when the change in percent against the base day compares with ``percent`` as ``op`` says."""
    x = series.value(day)
    if x is None:
        return _missing(day)
    base_day = day - timedelta(days=_LAG[baseline])
    base = series.value(base_day)
    if base is None:
        return Finding(False, x, reason=f"no data for the base day {base_day.isoformat()}")
    if base == 0:
        return Finding(False, x, expected=0.0, reason=f"the base day {base_day.isoformat()} is 0: change undefined")
    change = 100.0 * (x - base) / abs(base)
    detail = f"{change:+.1f}% vs {base_day.isoformat()} ({base:,.4g}); rule: change {op} {percent:g}%"
    return Finding(compare(change, op, percent), x, expected=base, score=change, detail=detail)


def leave_one_out_medians(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each value, the median of all the others (needs two values or more)."""
    n = values.size
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    position = np.arange(n)
    lo, hi = (n - 2) // 2, (n - 1) // 2  # middle positions among the n - 1 that remain
    # Dropping the value at sorted position p shifts every later position down by one.
    left = np.where(position > lo, ranked[lo], ranked[min(lo + 1, n - 1)])
    right = np.where(position > hi, ranked[hi], ranked[min(hi + 1, n - 1)])
    medians = np.empty(n)
    medians[order] = (left + right) / 2.0
    return medians


def _weekday_groups(series: DailySeries, day: date, weeks: int, excluded: frozenset[date]) -> list[NDArray[np.float64]]:
    """Values of the ``weeks`` weeks before ``day``, by weekday: ``[0]`` is ``day``'s own weekday."""
    groups: list[list[float]] = [[] for _ in range(7)]
    for lag in range(1, 7 * weeks + 1):
        past = day - timedelta(days=lag)
        value = series.value(past)
        if value is None:
            break  # before the series starts
        if past not in excluded:
            groups[lag % 7].append(value)
    return [np.asarray(group, dtype=np.float64) for group in groups]


def _deviations(
    groups: list[NDArray[np.float64]], median: float, mad_from: MadFrom, min_weeks: int
) -> NDArray[np.float64]:
    if mad_from == "same_weekday":
        return np.abs(groups[0] - median)
    usable = [group for group in groups if group.size >= max(min_weeks, 2)]
    return np.concatenate([np.abs(group - leave_one_out_medians(group)) for group in usable])


def _fires(z: float, threshold: float, direction: Direction) -> bool:
    if direction == "up":
        return z > threshold
    if direction == "down":
        return z < -threshold
    return abs(z) > threshold


def robust_z_finding(
    series: DailySeries,
    day: date,
    *,
    weeks: int = 8,
    threshold: float = 3.5,
    direction: Direction = "both",
    min_weeks: int = 4,
    mad_from: MadFrom = "all_weekdays",
    excluded: frozenset[date] = frozenset(),
) -> Finding:
    """The weekday-aware robust z-score of ``day`` (see the module docstring)."""
    x = series.value(day)
    if x is None:
        return _missing(day)
    if day in excluded:
        return Finding(False, x, reason="an excluded (festival) day")
    groups = _weekday_groups(series, day, weeks, excluded)
    if groups[0].size < min_weeks:
        return Finding(False, x, reason=f"needs {min_weeks} same-weekday days of history, has {groups[0].size}")
    median = float(np.median(groups[0]))
    deviations = _deviations(groups, median, mad_from, min_weeks)
    mad = float(np.median(deviations))
    scale = mad / MAD_CONSISTENCY if mad > 0 else MEAN_AD_CONSISTENCY * float(deviations.mean())
    where = f"median {median:,.4g} of {groups[0].size} same weekdays"
    if scale == 0:  # a constant baseline: any other value is off it by infinitely many deviations
        off = x != median
        fired = off and _fires(float(np.sign(x - median)) * np.inf, threshold, direction)
        return Finding(fired, x, expected=median, score=None if off else 0.0, detail=f"constant baseline, {where}")
    z = (x - median) / scale
    return Finding(_fires(z, threshold, direction), x, expected=median, score=z, detail=f"robust z {z:+.2f}, {where}")
