r"""The seasonal baseline: the mean of the same weekday over the last four weeks.

For a forecast made after day ``o`` (the origin, the last day with known demand) for day ``d > o``:

.. math:: \hat y_d = \frac{1}{4} \sum_{j=0}^{3} y_{d - 7m - 7j}, \qquad m = \lceil (d - o) / 7 \rceil

that is, the mean of the four latest observed days with ``d``'s weekday (all within the 28 days up to
the origin). With less history the mean runs over the weeks that exist; with none it is 0. Every
horizon therefore repeats the same weekly profile.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from patron.forecast._history import History

__all__ = ["BASELINE_WEEKS", "baseline_of", "seasonal_baseline"]

BASELINE_WEEKS = 4


def seasonal_baseline(
    units: NDArray[np.float64], horizon: int, *, origin: int | None = None, weeks: int = BASELINE_WEEKS
) -> NDArray[np.float64]:
    """Baseline forecasts of every series (rows of ``units``) for the ``horizon`` days after ``origin``.

    ``origin`` defaults to the last column; only columns up to it are read. Returns an array of shape
    ``(series, horizon)``.
    """
    count, days = units.shape
    last = days - 1 if origin is None else origin
    return baseline_of(History(units), np.arange(count, dtype=np.int64), last, horizon, weeks)


def baseline_of(
    history: History, which: NDArray[np.int64], origin: int, horizon: int, weeks: int = BASELINE_WEEKS
) -> NDArray[np.float64]:
    """Baseline forecasts of the series ``which`` of ``history``: shape ``(len(which), horizon)``."""
    series = np.repeat(which, horizon)
    target = origin + np.tile(np.arange(1, horizon + 1, dtype=np.int64), which.size)
    values = history.same_weekday_mean(series, np.full_like(series, origin), target, weeks)
    return np.nan_to_num(values).reshape(which.size, horizon)
