"""Shopping intensity over the calendar and the time warp built on it.

The intensity is a product of a day factor (promotion windows, the lull
before them and the calm after them), a weekday factor and an hour-of-day
profile, evaluated on hourly bins and normalised to mean 1 over the period.
*Operational time* is its cumulative integral, measured in days: a
homogeneous process in operational time, mapped back through the inverse,
becomes an inhomogeneous process in calendar time whose rate follows the
intensity, while its average rate is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

__all__ = ["PROMOTIONS", "Clock", "Promotion"]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Promotion:
    """A yearly shopping festival: a window of days ending on the peak day.

    Intensity rises linearly from ``window_boost`` on ``first_day`` to
    ``late_boost`` on the day before the peak, jumps to ``peak_boost`` on the
    peak day, with a rush in its first hour (the midnight launch).
    """

    name: str
    month: int
    first_day: int
    peak_day: int
    window_boost: float
    late_boost: float
    peak_boost: float


PROMOTIONS: tuple[Promotion, ...] = (
    Promotion("618", month=6, first_day=1, peak_day=18, window_boost=1.5, late_boost=2.2, peak_boost=4.0),
    Promotion("double11", month=11, first_day=1, peak_day=11, window_boost=1.7, late_boost=2.6, peak_boost=6.0),
)
LULL_DAYS = 10  # shoppers hold back before a festival ...
LULL_FACTOR = 0.85
CALM_DAYS = 5  # ... and rest after it
CALM_FACTOR = 0.8
MIDNIGHT_RUSH = 3.0
WEEKDAY_FACTOR = (0.95, 0.94, 0.96, 0.98, 1.03, 1.09, 1.05)  # Monday first
HOUR_PROFILE = (
    0.9, 0.5, 0.3, 0.2, 0.15, 0.15, 0.25, 0.5, 0.8, 1.0, 1.1, 1.15,
    1.25, 1.15, 1.0, 1.0, 1.0, 1.05, 1.1, 1.3, 1.6, 1.85, 1.75, 1.3,
)  # fmt: skip


@dataclass(frozen=True)
class Clock:
    """The period's hourly intensity and the operational-time warp.

    Calendar instants are whole seconds since ``start`` (midnight). ``cum``
    holds operational time (days) at each hour edge, so ``cum[-1]`` equals
    the number of days in the period.
    """

    start: date
    days: int
    cum: NDArray[np.float64]
    promo_day: NDArray[np.bool_]

    @classmethod
    def build(cls, start: date, end: date) -> Clock:
        dates = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
        days = len(dates)
        day_factor, promo_day = _day_factors(dates)
        weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        hourly = np.outer(day_factor * np.asarray(WEEKDAY_FACTOR)[weekday], np.asarray(HOUR_PROFILE))
        hourly[_peak_days(dates), 0] *= MIDNIGHT_RUSH
        weights = hourly.ravel()
        weights *= weights.size / weights.sum()
        cum = np.concatenate(([0.0], np.cumsum(weights / 24.0)))
        cum[-1] = float(days)
        return cls(start=start, days=days, cum=cum, promo_day=promo_day)

    @property
    def seconds(self) -> int:
        """Length of the period in seconds."""
        return self.days * SECONDS_PER_DAY

    @property
    def total(self) -> float:
        """Length of the period in operational days (equals ``days``)."""
        return float(self.cum[-1])

    def to_seconds(self, op_days: NDArray[np.float64]) -> NDArray[np.int64]:
        """Calendar seconds since start of operational instants (floored, inside the period)."""
        u = np.clip(op_days, 0.0, self.total)
        hour = np.clip(np.searchsorted(self.cum, u, side="right") - 1, 0, self.cum.size - 2)
        width = self.cum[hour + 1] - self.cum[hour]
        seconds = (hour + (u - self.cum[hour]) / width) * 3600.0
        return np.minimum(seconds.astype(np.int64), self.seconds - 1)

    def to_operational(self, seconds: NDArray[np.int64]) -> NDArray[np.float64]:
        """Operational days of calendar instants (seconds since start)."""
        hours = np.clip(seconds, 0, self.seconds) / 3600.0
        return np.interp(hours, np.arange(self.cum.size, dtype=np.float64), self.cum)

    def in_promotion(self, seconds: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each instant falls in a promotion window."""
        result: NDArray[np.bool_] = self.promo_day[seconds // SECONDS_PER_DAY]
        return result


def _month_day(dates: NDArray[np.datetime64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    months = dates.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    day = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    return month, day


def _peak_days(dates: NDArray[np.datetime64]) -> NDArray[np.bool_]:
    month, day = _month_day(dates)
    peak = np.zeros(dates.size, dtype=bool)
    for promo in PROMOTIONS:
        peak |= (month == promo.month) & (day == promo.peak_day)
    return peak


def _day_factors(dates: NDArray[np.datetime64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    month, day = _month_day(dates)
    factor = np.ones(dates.size)
    promo = np.zeros(dates.size, dtype=bool)
    ordinal = dates.astype(np.int64)
    for item in PROMOTIONS:
        in_window = (month == item.month) & (day >= item.first_day) & (day <= item.peak_day)
        ramp = (day - item.first_day) / max(item.peak_day - 1 - item.first_day, 1)
        rising = item.window_boost + (item.late_boost - item.window_boost) * ramp
        boost = np.where(day == item.peak_day, item.peak_boost, rising)
        factor = np.where(in_window, boost, factor)
        promo |= in_window
        first = ordinal[(month == item.month) & (day == item.first_day)]
        peak = ordinal[(month == item.month) & (day == item.peak_day)]
        for opening in first:
            lull = (ordinal >= opening - LULL_DAYS) & (ordinal < opening)
            factor = np.where(lull, factor * LULL_FACTOR, factor)
        for closing in peak:
            calm = (ordinal > closing) & (ordinal <= closing + CALM_DAYS)
            factor = np.where(calm, factor * CALM_FACTOR, factor)
    return factor, promo
