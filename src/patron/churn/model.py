r"""The churn model: gradient-boosted trees constrained to an additive model, read back as lookup tables.

Method
------
Each feature is cut into at most 255 bins at quantiles of the training values (every distinct value when
there are fewer); missing values (interval features of single-purchase members) keep a bin of their own.
A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (log-loss, fixed ``random_state``) is fitted
on the bin codes with ``interaction_cst`` holding every feature alone, so each tree splits on one feature
and the log-odds are a sum of one step function per feature (a generalised additive model, as in the
"explainable boosting machines" of Lou, Caruana & Gehrke 2012):

.. math:: \operatorname{logit} P(\text{churn} \mid x) = b + \sum_j f_j(x_j)

Evaluating the fitted trees once on every bin of every feature gives the tables :math:`f_j`, so scoring
a million members is a few array look-ups, and the reasons are exact: the contribution of feature *j* to
member *i* is :math:`f_j(x_{ij}) - f_j(m_j)`, the change in log-odds when the feature is replaced by its
median :math:`m_j` over the scored members. The contributions add up to the member's log-odds minus those
of the median member; the top reasons are the (up to) three largest positive ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patron.errors import ValidationError

__all__ = ["MAX_BINS", "MIN_REASON_LOG_ODDS", "MONOTONE", "ChurnModel", "fit_churn_model"]

log = logging.getLogger(__name__)
MAX_BINS: Final = 255
_ADDITIVITY_TOLERANCE = 1e-6
MIN_REASON_LOG_ODDS: Final = 0.01
MONOTONE: Final = {
    "recency_days": 1,
    "orders": -1,
    "purchase_days": -1,
    "monetary": -1,
    "orders_90d": -1,
    "orders_trend": -1,
    "spend_90d": -1,
    "spend_trend": -1,
    "mean_interval": 1,
    "last_interval": 1,
    "recency_ratio": 1,
    "categories": -1,
}
"""Direction of each feature's effect on the risk (1 up, -1 down; others free), imposed on the fit."""

FloatArray = npt.NDArray[np.float64]


def _edges(values: FloatArray) -> FloatArray:
    """Lower edges of the bins of one feature (at most MAX_BINS)."""
    known = values[~np.isnan(values)]
    distinct = np.unique(known)
    if len(distinct) <= MAX_BINS:
        return distinct if len(distinct) else np.zeros(1)
    return np.unique(np.quantile(known, np.linspace(0, 1, MAX_BINS + 1)[:-1]))


def _codes(column: FloatArray, edges: FloatArray) -> FloatArray:
    """Bin index of each value (below the first edge: bin 0); missing values stay NaN."""
    codes = np.clip(np.searchsorted(edges, column, side="right") - 1, 0, len(edges) - 1).astype(np.float64)
    codes[np.isnan(column)] = np.nan
    return codes


@dataclass(frozen=True, eq=False)
class ChurnModel:
    """A fitted additive churn model: bin edges and log-odds tables per feature.

    ``tables[j][c]`` is :math:`f_j` on bin ``c`` up to a constant (the last entry is the missing-value
    bin); ``offset`` makes the sum the log-odds.
    """

    features: tuple[str, ...]
    edges: tuple[FloatArray, ...]
    tables: tuple[FloatArray, ...]
    offset: float
    classifier: HistGradientBoostingClassifier
    missing_credit: Mapping[str, str] = field(default_factory=dict)

    def codes(self, x: FloatArray) -> npt.NDArray[np.intp]:
        """Table index of every value: the bin, or the last slot for a missing value."""
        out = np.empty(x.shape, dtype=np.intp)
        for j, edges in enumerate(self.edges):
            column = x[:, j]
            index = np.clip(np.searchsorted(edges, column, side="right") - 1, 0, len(edges) - 1)
            out[:, j] = np.where(np.isnan(column), len(edges), index)
        return out

    def terms(self, x: FloatArray) -> FloatArray:
        """Per member and feature: :math:`f_j(x_{ij})` (shifted so that the terms and offset add up)."""
        codes = self.codes(x)
        return np.column_stack([table[codes[:, j]] for j, table in enumerate(self.tables)])

    def log_odds(self, x: FloatArray) -> FloatArray:
        return np.asarray(self.offset + self.terms(x).sum(axis=1), dtype=np.float64)

    def risk(self, x: FloatArray) -> FloatArray:
        """Probability of churn over the horizon."""
        return np.asarray(expit(self.log_odds(x)), dtype=np.float64)

    def contributions(self, x: FloatArray) -> FloatArray:
        """Change in log-odds per feature when it is replaced by its median over the rows of ``x``.

        A missing value of a feature named in ``missing_credit`` is credited to the feature that explains
        it (an interval is missing because the member bought on a single day, so its effect goes to
        ``purchase_days``). Each row adds up to the member's log-odds minus those of the median member.
        """
        medians = np.array([np.nanmedian(c) if np.any(~np.isnan(c)) else np.nan for c in x.T])
        push = self.terms(x) - self.terms(medians[None, :])[0]
        for name, owner in self.missing_credit.items():
            j, k = self.features.index(name), self.features.index(owner)
            missing = np.isnan(x[:, j])
            push[missing, k] += push[missing, j]
            push[missing, j] = 0.0
        return np.asarray(push, dtype=np.float64)

    def reasons(self, x: FloatArray, top: int = 3) -> npt.NDArray[np.intp]:
        """Indexes of the (up to) ``top`` features raising each member's risk the most, largest first.

        One row per member, -1 where there is no further reason: only contributions above
        :data:`MIN_REASON_LOG_ODDS` count, so a member close to the median member may have fewer, or none.
        """
        push = self.contributions(x)
        order = np.argsort(-push, axis=1, kind="stable")[:, :top]
        ranked = np.take_along_axis(push, order, axis=1)
        return np.where(ranked > MIN_REASON_LOG_ODDS, order, -1)

    def reason_names(self, x: FloatArray, top: int = 3) -> list[list[str]]:
        """:meth:`reasons` as feature names."""
        return [[self.features[j] for j in row if j >= 0] for row in self.reasons(x, top)]


def _classifier(features: tuple[str, ...], random_state: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=500,
        max_leaf_nodes=16,
        min_samples_leaf=40,
        l2_regularization=1.0,
        interaction_cst=[[j] for j in range(len(features))],
        monotonic_cst=[MONOTONE.get(name, 0) for name in features],
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=random_state,
    )


def fit_churn_model(
    x: FloatArray,
    churned: npt.ArrayLike,
    features: tuple[str, ...],
    *,
    missing_credit: Mapping[str, str] | None = None,
    random_state: int = 0,
) -> ChurnModel:
    """Fit the additive model on ``x`` (members by features) and tabulate it."""
    y = np.asarray(churned, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != len(features) or len(y) != x.shape[0]:
        raise ValidationError("features and labels do not line up", field="features")
    if len(np.unique(y)) < 2:
        raise ValidationError("the labels hold a single class", field="churned")
    edges = tuple(_edges(x[:, j]) for j in range(x.shape[1]))
    codes = np.column_stack([_codes(x[:, j], e) for j, e in enumerate(edges)])
    # One OpenMP thread: on a shared machine (a build next to a server) idle-spinning threads of a
    # parallel fit slowed it five-fold and more, for a 1.5x gain on a quiet one.
    with threadpool_limits(limits=1, user_api="openmp"):
        classifier = _classifier(features, random_state).fit(codes, y)
        offset = float(classifier.decision_function(np.zeros((1, len(edges))))[0])
        tables = []
        for j, e in enumerate(edges):
            grid = np.zeros((len(e) + 1, len(edges)))
            grid[:, j] = np.append(np.arange(len(e), dtype=np.float64), np.nan)
            tables.append(classifier.decision_function(grid) - offset)
        model = ChurnModel(tuple(features), edges, tuple(tables), offset, classifier, dict(missing_credit or {}))
        _check_additive(model, codes, x)
    return model


def _check_additive(model: ChurnModel, codes: FloatArray, x: FloatArray) -> None:
    """The tables must reproduce the trees; a library change breaking the interaction constraint fails here."""
    sample = slice(0, min(len(x), 2000))
    direct = model.classifier.decision_function(codes[sample])
    gap = float(np.max(np.abs(direct - model.log_odds(x[sample])))) if len(direct) else 0.0
    if gap > _ADDITIVITY_TOLERANCE:
        raise RuntimeError(f"the boosted trees are not additive (gap {gap:.3g} in log-odds)")
