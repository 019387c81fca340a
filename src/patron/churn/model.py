r"""The churn model: gradient-boosted trees constrained to an additive model, read back as lookup tables.

Method
------
Each feature is cut into at most :data:`MAX_BINS` bins at quantiles of the training values (every
distinct value when there are fewer); missing values (interval features of single-purchase members) keep
a bin of their own. A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (log-loss, fixed
``random_state``, early stopping on 15 % of each class chosen by a hash of the rows' values) is fitted on
the bin codes with ``interaction_cst`` holding every feature alone, so each tree splits on one feature
and the log-odds are a sum of one step function per feature: a generalised additive model fitted by
boosting shallow single-feature trees (Lou, Caruana & Gehrke 2012, "Intelligible models for classification and
regression", the method of InterpretML's explainable boosting machines):

.. math:: \operatorname{logit} P(\text{churn} \mid x) = b + \sum_j f_j(x_j)

The direction of the features whose effect is not in doubt is imposed (:data:`MONOTONE`: more days since
the last purchase never lowers the risk, more purchase days never raise it, ...).

Evaluating the fitted trees once on every bin of every feature gives the tables :math:`f_j`, so scoring
a million members is a few array look-ups, and the reasons are exact: for an additive model the Shapley
values (Lundberg & Lee 2017) with the scored members as background are
:math:`\phi_{ij} = f_j(x_{ij}) - \overline{f_j}`, and they add up to the member's log-odds minus the
mean log-odds. The top reasons are the (up to) three largest positive ones above
:data:`MIN_REASON_LOG_ODDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import expit  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patron.errors import ValidationError

__all__ = ["MAX_BINS", "MIN_REASON_LOG_ODDS", "MONOTONE", "ChurnModel", "fit_churn_model", "row_digest"]

MAX_BINS: Final = 128
_ADDITIVITY_TOLERANCE = 1e-6
_VALIDATION_SHARE = 0.15
MIN_REASON_LOG_ODDS: Final = 0.1  # about 2.5 points of risk around 50 %
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

    def contributions(self, x: FloatArray, terms: FloatArray | None = None) -> FloatArray:
        r"""Per member and feature: the feature's term minus its mean over the rows of ``x``.

        For an additive model these are exactly the Shapley values with the scored members as background,
        :math:`\phi_{ij} = f_j(x_{ij}) - \overline{f_j}`; each row adds up to the member's log-odds minus
        the mean log-odds. A missing value of a feature named in ``missing_credit`` is credited to the
        feature that explains it (an interval is missing because the member bought on a single day, so its
        effect goes to ``purchase_days``). ``terms`` are :meth:`terms` of ``x`` when already at hand.
        """
        terms = self.terms(x) if terms is None else terms
        push = terms - terms.mean(axis=0) if len(terms) else terms.copy()
        for name, owner in self.missing_credit.items():
            j, k = self.features.index(name), self.features.index(owner)
            missing = np.isnan(x[:, j])
            push[missing, k] += push[missing, j]
            push[missing, j] = 0.0
        return np.asarray(push, dtype=np.float64)

    def reasons(self, x: FloatArray, top: int = 3, terms: FloatArray | None = None) -> npt.NDArray[np.intp]:
        """Indexes of the (up to) ``top`` features raising each member's risk the most, largest first.

        One row per member, -1 where there is no further reason: only contributions above
        :data:`MIN_REASON_LOG_ODDS` count, so a member close to the average may have fewer, or none.
        """
        push = self.contributions(x, terms)
        top = min(top, push.shape[1])
        chosen = np.argpartition(-push, top - 1, axis=1)[:, :top] if len(push) else np.empty((0, top), np.intp)
        ranked = np.take_along_axis(push, chosen, axis=1)
        order = np.argsort(-ranked, axis=1, kind="stable")
        chosen, ranked = np.take_along_axis(chosen, order, axis=1), np.take_along_axis(ranked, order, axis=1)
        return np.where(ranked > MIN_REASON_LOG_ODDS, chosen, -1)

    def reason_names(self, x: FloatArray, top: int = 3) -> list[list[str]]:
        """:meth:`reasons` as feature names."""
        return [[self.features[j] for j in row if j >= 0] for row in self.reasons(x, top)]


def _classifier(features: tuple[str, ...], rows: int, random_state: int) -> HistGradientBoostingClassifier:
    # Small trees with large leaves: smooth step functions that do not chase noise (a pure-noise feature
    # stays within about 0.1 log-odds on 20,000 simulated members), so its wiggles do not become reasons.
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=500,
        max_leaf_nodes=4,
        min_samples_leaf=max(20, rows // 50),
        l2_regularization=1.0,
        interaction_cst=[[j] for j in range(len(features))],
        monotonic_cst=[MONOTONE.get(name, 0) for name in features],
        early_stopping=True,  # on the rows fit_churn_model holds out
        n_iter_no_change=20,
        random_state=random_state,
    )


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The splitmix64 finaliser: every input bit moves about half the output bits (arithmetic wraps)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def row_digest(x: FloatArray, churned: npt.ArrayLike, salt: int = 0) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each row's values (rounded to 1e-6, so that sums added up in another order agree).

    Sampling and the early-stopping split pick rows by it, so the fitted model depends on the labelled rows
    alone: not on member keys (a re-import draws new ones) nor on the order an engine returns rows in.
    Different ``salt`` values give independent hashes.
    """
    rounded = np.where(np.isnan(x), -1.0e300, np.round(np.asarray(x, dtype=np.float64), 6)) + 0.0  # no -0.0
    digest = _mix(np.asarray(churned).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15 * (salt + 1) % 2**64))
    for column in np.ascontiguousarray(rounded.T):
        digest = _mix(digest ^ column.view(np.uint64))
    return digest


def fit_churn_model(
    x: FloatArray,
    churned: npt.ArrayLike,
    features: tuple[str, ...],
    *,
    missing_credit: Mapping[str, str] | None = None,
    random_state: int = 0,
) -> ChurnModel:
    """Fit the additive model on ``x`` (members by features) and tabulate it.

    Early stopping watches 15 % of each class picked by :func:`row_digest`, so the split, hence the model,
    is a function of the labelled rows alone (a re-import that draws new member keys, or another
    engine's row order, gives the same model).
    """
    y = np.asarray(churned, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != len(features) or len(y) != x.shape[0]:
        raise ValidationError("features and labels do not line up", field="features")
    if min(int(y.sum()), int((1 - y).sum())) < 2:
        raise ValidationError("the labels need at least two members of each class", field="churned")
    held_out = _held_out(x, y)
    edges = tuple(_edges(x[:, j]) for j in range(x.shape[1]))
    codes = np.column_stack([_codes(x[:, j], e) for j, e in enumerate(edges)])
    # One OpenMP thread: builds share the machine with a server and imports, and there a two-thread fit
    # of 200,000 rows took 78 s against 14 s for one thread (idle threads spin while waiting for a core).
    with threadpool_limits(limits=1, user_api="openmp"):
        classifier = _classifier(features, len(y), random_state).fit(
            codes[~held_out], y[~held_out], X_val=codes[held_out], y_val=y[held_out]
        )
        offset = float(classifier.decision_function(np.zeros((1, len(edges))))[0])
        tables = []
        for j, e in enumerate(edges):
            grid = np.zeros((len(e) + 1, len(edges)))
            grid[:, j] = np.append(np.arange(len(e), dtype=np.float64), np.nan)
            tables.append(classifier.decision_function(grid) - offset)
        model = ChurnModel(tuple(features), edges, tuple(tables), offset, classifier, dict(missing_credit or {}))
        _check_additive(model, codes, x)
    return model


def _held_out(x: FloatArray, y: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """The early-stopping rows: in each class, the share of rows with the smallest salted digest.

    Salted, so independent of the unsalted digest callers may have sampled the rows by; per class, so
    both classes are always on both sides.
    """
    digest = row_digest(x, y, salt=1)
    held_out = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        take = min(len(rows) - 1, max(1, round(_VALIDATION_SHARE * len(rows))))
        held_out[rows[np.argsort(digest[rows], kind="stable")[:take]]] = True
    return held_out


def _check_additive(model: ChurnModel, codes: FloatArray, x: FloatArray) -> None:
    """The tables must reproduce the trees; a library change breaking the interaction constraint fails here."""
    sample = slice(0, min(len(x), 2000))
    direct = model.classifier.decision_function(codes[sample])
    gap = float(np.max(np.abs(direct - model.log_odds(x[sample])))) if len(direct) else 0.0
    if gap > _ADDITIVITY_TOLERANCE:
        raise RuntimeError(f"the boosted trees are not additive (gap {gap:.3g} in log-odds)")
