r"""The learned forecaster: one global gradient-boosting model over all series of both levels.

Direct multi-step forecasting: a row is (series :math:`s`, origin :math:`o`, horizon :math:`k`), its
features are computed from the days up to :math:`o` only, and its target is the demand of day
:math:`d = o + k`, :math:`1 \le k \le h`. One model serves every horizon (``horizon`` is a feature),
so no forecast feeds another.

Scale: every series-origin pair has a level :math:`\ell = ` the mean demand of the 28 days up to
:math:`o`. The target is :math:`y_d / \ell`, capped at :data:`TARGET_CAP` (one wholesale order should
not teach the model that any day may bring 100 times the usual), and lag features are divided by
:math:`\ell` too, so that a best-seller and a slow mover share one pattern. The model is a
``HistGradientBoostingRegressor`` with Poisson loss; rows are weighted by :math:`\ell`, which makes
the loss the Poisson deviance of the unscaled units, close to what WAPE counts. The two levels get
equal total weight, so a few large category series do not drown the products. The forecast is
:math:`\ell \cdot f(x)`; a series with :math:`\ell = 0` is forecast 0.

Features: horizon; the target day's weekday (categorical) and day of month; per campaign day (618,
Double-11) the days until the next one (capped at 30) and since the last one (capped at 14); the
latest and the one-week-older demand on the target's weekday, the seasonal baseline, the mean of the
last 7, 14 and 91 days (all divided by :math:`\ell`); the demand around the same day a year (364 days)
earlier, divided by :math:`\ell` and by the 28-day level of a year before the origin; :math:`\log(1 +
\ell)`; and whether the series is a category. Features that cannot vary in the training rows (a year
ago before the data began) are left out of that fit.

Training rows: at most ``training_rows`` (series, origin, horizon) triples drawn uniformly, with a
fixed seed, among those whose target falls in the ``training_days`` before the cut and whose series
is forecast at the cut (see :func:`forecast_series`); a fifth of them for categories. With less than
:data:`MIN_TRAINING_DAYS` days before the cut there is no fit, and the forecast is the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingRegressor  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patron.forecast._history import History
from patron.forecast.baseline import BASELINE_WEEKS
from patron.forecast.demand import DemandPanel

__all__ = [
    "CAMPAIGNS",
    "MIN_SALE_DAYS",
    "MIN_TRAINING_DAYS",
    "TARGET_CAP",
    "Campaign",
    "DemandModel",
    "ModelSettings",
    "SeriesSet",
    "forecast_series",
]

TARGET_CAP = 10.0
MIN_SALE_DAYS = 8  # a product is forecast when it sold on at least 8 of the 91 days up to the origin
ELIGIBILITY_DAYS = 91
LEVEL_DAYS = 28
MIN_TRAINING_ROWS = 500
MIN_TRAINING_DAYS = 91  # history before a cut that a fit needs; with less the forecast is the baseline
_DAYS_TO_CAP = 30
_DAYS_SINCE_CAP = 14
_YEAR = 364  # 52 weeks: the same weekday a year earlier


@dataclass(frozen=True)
class Campaign:
    """A yearly campaign day, such as 618 (June 18) or Double-11 (November 11)."""

    name: str
    month: int
    day: int


CAMPAIGNS: tuple[Campaign, ...] = (Campaign("618", 6, 18), Campaign("double11", 11, 11))


@dataclass(frozen=True)
class ModelSettings:
    """Size and regularisation of the learned model (the defaults are what the build uses)."""

    training_rows: int = 100_000
    category_share: float = 0.2
    training_days: int = 365
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    random_state: int = 0
    campaigns: tuple[Campaign, ...] = field(default=CAMPAIGNS)


@dataclass(frozen=True)
class SeriesSet:
    """One level's panel with its look-ups, as the model reads it."""

    panel: DemandPanel
    history: History

    @classmethod
    def of(cls, panel: DemandPanel) -> SeriesSet:
        return cls(panel, History(panel.units))

    @property
    def is_category(self) -> bool:
        return self.panel.level == "category"


def forecast_series(series: SeriesSet, origin: int) -> NDArray[np.int64]:
    """Indices of the series forecast after ``origin``.

    Products need sales on at least :data:`MIN_SALE_DAYS` of the 91 days up to the origin; categories
    one. Only days up to the origin are read.
    """
    first = max(origin - ELIGIBILITY_DAYS + 1, 0)
    sale_days = (series.panel.units[:, first : origin + 1] > 0).sum(axis=1)
    needed = 1 if series.is_category else MIN_SALE_DAYS
    return np.flatnonzero(sale_days >= needed).astype(np.int64)


class _Calendar:
    """Calendar features of the day indices of a panel and its forecast days."""

    def __init__(self, start: date, days: int, campaigns: Sequence[Campaign]) -> None:
        ordinals = np.arange(start.toordinal(), start.toordinal() + days, dtype=np.int64)
        dates = [start + timedelta(days=i) for i in range(days)]
        self.weekday = np.array([d.weekday() for d in dates], dtype=np.float64)
        self.campaign: list[NDArray[np.float64]] = []
        self.names: list[str] = []
        years = range(start.year - 1, dates[-1].year + 2)
        for item in campaigns:
            peaks = np.array([date(y, item.month, item.day).toordinal() for y in years], dtype=np.int64)
            after = np.searchsorted(peaks, ordinals, side="left")
            to_next = np.minimum(peaks[after] - ordinals, _DAYS_TO_CAP)
            latest = np.searchsorted(peaks, ordinals, side="right") - 1
            since = np.minimum(ordinals - peaks[latest], _DAYS_SINCE_CAP)
            self.campaign += [to_next.astype(np.float64), since.astype(np.float64)]
            self.names += [f"days_to_{item.name}", f"days_since_{item.name}"]


def _features(
    series: SeriesSet, calendar: _Calendar, rows: tuple[NDArray[np.int64], ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Feature matrix and level of rows (series, origin, horizon); reads days up to each origin only."""
    s, o, k = rows
    h = series.history
    d = o + k
    level = h.mean(s, o - LEVEL_DAYS + 1, o)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(level > 0, level, np.nan)
        latest = d - 7 * (-(-k // 7))
        year_before = h.mean(s, o - _YEAR - LEVEL_DAYS + 1, o - _YEAR)
        year_ago = h.mean(s, d - _YEAR - 3, np.minimum(d - _YEAR + 3, o))
        columns = [
            k.astype(np.float64),
            calendar.weekday[d],
            *(values[d] for values in calendar.campaign),
            h.at(s, latest) / scale,
            h.at(s, latest - 7) / scale,
            h.same_weekday_mean(s, o, d, BASELINE_WEEKS) / scale,
            h.mean(s, o - 6, o) / scale,
            h.mean(s, o - 13, o) / scale,
            h.mean(s, o - ELIGIBILITY_DAYS + 1, o) / scale,
            year_ago / scale,
            year_ago / np.where(year_before > 0, year_before, np.nan),
            np.log1p(level),
            np.full(s.size, 1.0 if series.is_category else 0.0),
        ]
    return np.column_stack(columns), np.nan_to_num(level)


def feature_names(campaigns: Sequence[Campaign]) -> tuple[str, ...]:
    names = [f"{prefix}_{c.name}" for c in campaigns for prefix in ("days_to", "days_since")]
    return (
        "horizon",
        "weekday",
        *names,
        "same_weekday_latest",
        "same_weekday_previous",
        "baseline",
        "mean_7",
        "mean_14",
        "mean_91",
        "year_ago",
        "year_ago_index",
        "log_level",
        "is_category",
    )


class _Binner:
    """Quantile bins of the continuous features, computed here rather than in the regressor.

    With sample weights the regressor finds its bin edges by weighted percentiles, one sort per edge
    and feature, which took three quarters of a fit; features with at most 255 distinct values it
    takes as they are. Values become their bin number (missing stays missing), so trees split on the
    same edges either way.
    """

    def __init__(self, x: NDArray[np.float64], max_bins: int = 255) -> None:
        self.edges: list[NDArray[np.float64] | None] = []
        quantiles = np.linspace(0.0, 1.0, max_bins + 1)[1:-1]
        for column in x.T:
            finite = column[np.isfinite(column)]
            many = np.unique(finite).size > max_bins
            self.edges.append(np.unique(np.quantile(finite, quantiles)) if many else None)

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out = x.copy()
        for j, edges in enumerate(self.edges):
            if edges is not None:
                column = x[:, j]
                out[:, j] = np.where(np.isnan(column), np.nan, np.searchsorted(edges, column, side="left"))
        return out


class DemandModel:
    """Fit on the days before a cut, forecast the ``horizon`` days after an origin."""

    def __init__(self, horizon: int, settings: ModelSettings = ModelSettings()) -> None:
        self.horizon = horizon
        self.settings = settings
        self.names = feature_names(settings.campaigns)
        self.used: tuple[str, ...] = ()
        self.training_rows = 0
        self._regressor: HistGradientBoostingRegressor | None = None
        self._binner: _Binner | None = None
        self._columns: NDArray[np.bool_] = np.zeros(len(self.names), dtype=bool)

    @property
    def fitted(self) -> bool:
        return self._regressor is not None

    def _calendar(self, series: SeriesSet) -> _Calendar:
        panel = series.panel
        return _Calendar(panel.start, panel.days + self.horizon, self.settings.campaigns)

    def _rows(self, series: SeriesSet, cut: int, count: int, rng: np.random.Generator) -> tuple[NDArray[np.int64], ...]:
        eligible = forecast_series(series, cut - 1)
        first_target = max(cut - self.settings.training_days, LEVEL_DAYS)
        if eligible.size == 0 or first_target >= cut or count <= 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        s = eligible[rng.integers(0, eligible.size, count)]
        d = rng.integers(first_target, cut, count)
        k = rng.integers(1, self.horizon + 1, count)
        o = d - k
        keep = o >= LEVEL_DAYS - 1
        return s[keep], o[keep], k[keep]

    def _training_set(
        self, sets: Sequence[SeriesSet], cut: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Features, capped target ratios and weights of the rows drawn for a fit at ``cut``."""
        rng = np.random.default_rng([self.settings.random_state, cut])
        parts = []
        for series in sets:
            share = self.settings.category_share if series.is_category else 1.0 - self.settings.category_share
            rows = self._rows(series, cut, round(self.settings.training_rows * share), rng)
            x, level = _features(series, self._calendar(series), rows)
            target = series.history.at(rows[0], rows[1] + rows[2])
            ok = level > 0
            if ok.any():
                parts.append((x[ok], np.minimum(target[ok] / level[ok], TARGET_CAP), level[ok]))
        if not parts:
            empty = np.zeros(0)
            return np.zeros((0, len(self.names))), empty, empty
        # Equal total weight per level (see the module docstring).
        mean_weight = sum(float(w.sum()) for _, _, w in parts) / len(parts)
        weights = np.concatenate([w * (mean_weight / w.sum()) for _, _, w in parts])
        return np.vstack([x for x, _, _ in parts]), np.concatenate([y for _, y, _ in parts]), weights

    def fit(self, sets: Sequence[SeriesSet], cut: int) -> bool:
        """Train on targets before day ``cut``; return whether there was enough to train on.

        It needs :data:`MIN_TRAINING_DAYS` days before the cut and :data:`MIN_TRAINING_ROWS` rows.
        """
        self._regressor, self.training_rows = None, 0
        if cut < MIN_TRAINING_DAYS:
            return False
        x, y, weights = self._training_set(sets, cut)
        self.training_rows = int(y.size)
        if y.size < MIN_TRAINING_ROWS:
            return False
        self._columns = np.array([np.unique(c[np.isfinite(c)]).size > 1 for c in x.T])
        self.used = tuple(n for n, keep in zip(self.names, self._columns, strict=True) if keep)
        self._binner = _Binner(x[:, self._columns])
        regressor = self._new_regressor()
        # One OpenMP thread: on a shared machine idle-spinning threads slow a parallel fit many-fold.
        with threadpool_limits(limits=1, user_api="openmp"):
            regressor.fit(self._binner.transform(x[:, self._columns]), y, weights)
        self._regressor = regressor
        return True

    def _new_regressor(self) -> HistGradientBoostingRegressor:
        s = self.settings
        categorical = [name == "weekday" for name in self.used]
        return HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=s.learning_rate,
            max_iter=s.max_iter,
            max_leaf_nodes=s.max_leaf_nodes,
            min_samples_leaf=s.min_samples_leaf,
            l2_regularization=s.l2_regularization,
            categorical_features=categorical if any(categorical) else None,
            early_stopping=False,
            random_state=s.random_state,
        )

    def predict(self, series: SeriesSet, origin: int, which: NDArray[np.int64]) -> NDArray[np.float64]:
        """Forecasts of the series ``which`` for the ``horizon`` days after ``origin``: shape (len(which), horizon)."""
        if self._regressor is None or self._binner is None:
            raise RuntimeError("the model is not fitted")
        count = which.size
        s = np.repeat(which, self.horizon)
        k = np.tile(np.arange(1, self.horizon + 1, dtype=np.int64), count)
        x, level = _features(series, self._calendar(series), (s, np.full_like(s, origin), k))
        if count == 0:
            return np.zeros((0, self.horizon))
        with threadpool_limits(limits=1, user_api="openmp"):
            ratio = self._regressor.predict(self._binner.transform(x[:, self._columns]))
        return np.where(level > 0, ratio * level, 0.0).reshape(count, self.horizon)
