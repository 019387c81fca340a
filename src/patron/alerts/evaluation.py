"""How well anomaly detectors find injected anomalies: a synthetic series, detectors, precision and recall.

The series is daily GMV over two years: a level growing linearly by
``growth`` over the period, times the demo shop's calendar intensity
(:mod:`patron.demo.seasonality`: weekday factors, the 618 and Double-11
festival windows with their peaks, the lull before and the calm after each),
times log-normal noise of standard deviation ``noise``. Anomalies multiply
the value of chosen days by fixed factors (spikes and drops); they fall
after a warm-up and outside festival windows, on distinct days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from patron.alerts.calendar import festival_days
from patron.alerts.detection import DailySeries, MadFrom, robust_z_finding
from patron.demo.seasonality import Clock

__all__ = [
    "ANOMALY_FACTORS",
    "SEED",
    "DetectionScore",
    "Injected",
    "SyntheticSeries",
    "global_z_flags",
    "score_detection",
    "synthetic_gmv",
    "weekday_robust_flags",
]

SEED = 20241111
ANOMALY_FACTORS = (1.5, 2.0, 0.5, 0.25)  # two spike sizes, two drop sizes, equally many of each


@dataclass(frozen=True)
class Injected:
    day: date
    factor: float


@dataclass(frozen=True)
class SyntheticSeries:
    series: DailySeries
    anomalies: tuple[Injected, ...]
    festivals: frozenset[date]

    @property
    def truth(self) -> frozenset[date]:
        return frozenset(a.day for a in self.anomalies)


@dataclass(frozen=True)
class DetectionScore:
    """Counts of a detector's flags against the true anomaly days.

    Precision is 0 when nothing was flagged, recall 0 when there was nothing to find.
    """

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score_detection(flagged: frozenset[date], truth: frozenset[date]) -> DetectionScore:
    """Precision and recall of ``flagged`` days against the ``truth`` days."""
    hits = len(flagged & truth)
    return DetectionScore(hits, len(flagged) - hits, len(truth) - hits)


def synthetic_gmv(
    seed: int = SEED,
    *,
    start: date = date(2024, 1, 1),
    end: date = date(2025, 12, 31),
    level: float = 50_000.0,
    growth: float = 0.6,
    noise: float = 0.08,
    anomalies: int = 24,
    warm_up_days: int = 56,
) -> SyntheticSeries:
    """A fixed-seed daily GMV series with ``anomalies`` injected days (see the module docstring)."""
    rng = np.random.default_rng(seed)
    clock = Clock.build(start, end)
    intensity = np.diff(clock.cum[::24])  # operational days per calendar day: the day's relative volume
    days = intensity.size
    trend = level * (1.0 + growth * np.arange(days) / days)
    values = trend * intensity * np.exp(rng.normal(-(noise**2) / 2, noise, days))
    festivals = festival_days(start, end)
    eligible = [i for i in range(warm_up_days, days) if start + timedelta(days=i) not in festivals]
    chosen = np.sort(rng.choice(eligible, size=anomalies, replace=False))
    factors = np.resize(np.asarray(ANOMALY_FACTORS), anomalies)
    rng.shuffle(factors)
    values[chosen] *= factors
    injected = tuple(Injected(start + timedelta(days=int(i)), float(f)) for i, f in zip(chosen, factors, strict=True))
    return SyntheticSeries(DailySeries(start, values), injected, festivals)


def weekday_robust_flags(
    series: DailySeries,
    *,
    excluded: frozenset[date] = frozenset(),
    weeks: int = 8,
    threshold: float = 3.5,
    min_weeks: int = 4,
    mad_from: MadFrom = "all_weekdays",
) -> frozenset[date]:
    """Days the weekday-aware robust z-score flags (``|z| > threshold``)."""
    return frozenset(
        day
        for day in series.days()
        if robust_z_finding(
            series, day, weeks=weeks, threshold=threshold, min_weeks=min_weeks, mad_from=mad_from, excluded=excluded
        ).fired
    )


def global_z_flags(
    series: DailySeries, *, threshold: float = 3.0, excluded: frozenset[date] = frozenset()
) -> frozenset[date]:
    """The naive detector: ``|x - mean| / sd > threshold`` with mean and sd over the whole series."""
    days = series.days()
    keep = np.asarray([day not in excluded for day in days])
    mean, sd = float(series.values[keep].mean()), float(series.values[keep].std())
    z = np.abs(series.values - mean) / sd
    return frozenset(day for day, kept, score in zip(days, keep, z, strict=True) if kept and score > threshold)
