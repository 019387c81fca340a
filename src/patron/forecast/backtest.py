r"""Forecasts at a cut, and their rolling-origin backtest with WAPE.

A forecast *at cut* ``c`` knows the days before ``c`` only: the model is fitted on targets before
``c``, the series to forecast are chosen from the days before ``c``, and both forecasters start from
the origin ``c - 1``. The backtest makes forecasts at the cuts ``T - j h`` for ``j = n .. 1`` (``T``
days of history, horizon ``h``, ``n`` windows, at most as many as leave :data:`MIN_TRAINING_DAYS`
before the first cut) and scores them against the days ``[c, c + h)``:

.. math:: \mathrm{WAPE} = \frac{\sum |y - \hat y|}{\sum y}

summed over the forecast series and days of a level, per window and over all windows together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from patron.forecast.baseline import baseline_of
from patron.forecast.demand import Level
from patron.forecast.model import MIN_TRAINING_DAYS, DemandModel, ModelSettings, SeriesSet, forecast_series

__all__ = [
    "MIN_TRAINING_DAYS",
    "Backtest",
    "LevelForecast",
    "LevelScore",
    "WindowScore",
    "backtest",
    "forecast_at",
    "wape",
]


def wape(actual: NDArray[np.float64], forecast: NDArray[np.float64]) -> float | None:
    """Weighted absolute percentage error, ``sum |actual - forecast| / sum actual``; None without demand."""
    total = float(np.sum(actual))
    if total <= 0:
        return None
    return float(np.sum(np.abs(actual - forecast)) / total)


@dataclass(frozen=True)
class LevelForecast:
    """Both forecasts of one level's series (rows: ``series``, indices into the panel) after a cut."""

    level: Level
    series: NDArray[np.int64]
    baseline: NDArray[np.float64]
    forecast: NDArray[np.float64]


def forecast_at(
    sets: Sequence[SeriesSet],
    cut: int,
    horizon: int,
    settings: ModelSettings = ModelSettings(),  # noqa: B008
) -> tuple[dict[Level, LevelForecast], DemandModel]:
    """Fit on the days before ``cut``; forecast the ``horizon`` days from ``cut`` with both forecasters.

    Where the model cannot be fitted (too little history) its forecast is the baseline.
    """
    model = DemandModel(horizon, settings)
    model.fit(sets, cut)
    result: dict[Level, LevelForecast] = {}
    for series in sets:
        which = forecast_series(series, cut - 1)
        baseline = baseline_of(series.history, which, cut - 1, horizon)
        forecast = model.predict(series, cut - 1, which) if model.fitted else baseline
        result[series.panel.level] = LevelForecast(series.panel.level, which, baseline, forecast)
    return result, model


@dataclass(frozen=True)
class WindowScore:
    """Totals of one level in one window (or over all windows)."""

    start: date
    end: date  # exclusive
    series: int
    actual: float
    baseline_error: float
    model_error: float

    @property
    def baseline_wape(self) -> float | None:
        return self.baseline_error / self.actual if self.actual > 0 else None

    @property
    def model_wape(self) -> float | None:
        return self.model_error / self.actual if self.actual > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "series": self.series,
            "actual_units": self.actual,
            "baseline_wape": self.baseline_wape,
            "model_wape": self.model_wape,
        }


@dataclass(frozen=True)
class LevelScore:
    level: Level
    windows: tuple[WindowScore, ...]

    @property
    def total(self) -> WindowScore:
        return WindowScore(
            start=self.windows[0].start,
            end=self.windows[-1].end,
            series=max(w.series for w in self.windows),
            actual=sum(w.actual for w in self.windows),
            baseline_error=sum(w.baseline_error for w in self.windows),
            model_error=sum(w.model_error for w in self.windows),
        )


@dataclass(frozen=True)
class Backtest:
    """Scores per level over the rolling windows; ``reason`` says why there are none."""

    horizon: int
    levels: tuple[LevelScore, ...]
    training_rows: tuple[int, ...]
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        levels: dict[str, object] = {}
        for score in self.levels:
            total = score.total.as_dict()
            levels[score.level] = {**total, "windows": [w.as_dict() for w in score.windows]}
        return {
            "windows": len(self.levels[0].windows) if self.levels else 0,
            "horizon_days": self.horizon,
            "training_rows": list(self.training_rows),
            "levels": levels,
            "reason": self.reason,
        }


def backtest(
    sets: Sequence[SeriesSet],
    horizon: int,
    windows: int = 3,
    settings: ModelSettings = ModelSettings(),  # noqa: B008
) -> Backtest:
    """Score both forecasters on the last ``windows`` windows of ``horizon`` days (rolling origins)."""
    days = sets[0].panel.days
    count = min(windows, max((days - MIN_TRAINING_DAYS) // horizon, 0))
    if count == 0:
        reason = f"too little history for a backtest: {days} days, need {MIN_TRAINING_DAYS + horizon}"
        return Backtest(horizon, (), (), reason)
    scores: dict[Level, list[WindowScore]] = {s.panel.level: [] for s in sets}
    rows: list[int] = []
    for j in range(count, 0, -1):
        cut = days - j * horizon
        forecasts, model = forecast_at(sets, cut, horizon, settings)
        rows.append(model.training_rows)
        for series in sets:
            fc = forecasts[series.panel.level]
            actual = series.panel.units[fc.series, cut : cut + horizon]
            scores[series.panel.level].append(
                WindowScore(
                    start=series.panel.day(cut),
                    end=series.panel.day(cut + horizon),
                    series=int(fc.series.size),
                    actual=float(actual.sum()),
                    baseline_error=float(np.abs(actual - fc.baseline).sum()),
                    model_error=float(np.abs(actual - fc.forecast).sum()),
                )
            )
    levels = tuple(LevelScore(level, tuple(w)) for level, w in scores.items())
    return Backtest(horizon, levels, tuple(rows))
