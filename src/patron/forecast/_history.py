"""Look-ups into daily series by day index, safe before the first day.

Indices count days from the panel's first day; an index before it reads as missing (NaN) instead of
wrapping around to the end of the array, and window means use only the days that exist.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["PAD_DAYS", "History"]

PAD_DAYS = 400  # deepest look-back: a year-ago window of an origin 28 days back


class History:
    """Daily values of many series with lagged look-ups and window means (prefix sums)."""

    def __init__(self, units: NDArray[np.float64]) -> None:
        count, days = units.shape
        self.days = days
        self._values = np.full((count, days + PAD_DAYS), np.nan)
        self._values[:, PAD_DAYS:] = units
        self._cum = np.zeros((count, days + PAD_DAYS + 1))
        np.cumsum(np.nan_to_num(self._values), axis=1, out=self._cum[:, 1:])

    def at(self, series: NDArray[np.int64], day: NDArray[np.int64]) -> NDArray[np.float64]:
        """Value of each series on each day index; NaN before the first day."""
        result: NDArray[np.float64] = self._values[series, np.maximum(day, -PAD_DAYS) + PAD_DAYS]
        return result

    def mean(self, series: NDArray[np.int64], first: NDArray[np.int64], last: NDArray[np.int64]) -> NDArray[np.float64]:
        """Mean over the days ``first..last`` (inclusive) that exist; NaN when none does."""
        lo = np.maximum(first, 0)
        hi = np.maximum(last, lo - 1)
        count = hi - lo + 1
        total = self._cum[series, hi + PAD_DAYS + 1] - self._cum[series, lo + PAD_DAYS]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def same_weekday_mean(
        self, series: NDArray[np.int64], origin: NDArray[np.int64], target: NDArray[np.int64], weeks: int
    ) -> NDArray[np.float64]:
        """Mean of the ``weeks`` latest days up to ``origin`` that share the target day's weekday.

        The latest such day is ``target - 7 * ceil((target - origin) / 7)``; days before the first
        day are left out of the mean (NaN when none is left).
        """
        latest = target - 7 * (-(-(target - origin) // 7))
        values = np.stack([self.at(series, latest - 7 * week) for week in range(weeks)])
        present = ~np.isnan(values)
        count = present.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, np.nansum(values, axis=0) / np.maximum(count, 1), np.nan)
