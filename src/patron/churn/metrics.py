"""Scores of a churn ranking against observed outcomes: ROC AUC, precision@k, Brier, calibration.

Small pure functions over numpy arrays (``churned`` is 1 for a member who churned, 0 otherwise; higher
scores mean more risk). A degenerate input (no member, a single class) yields ``None`` rather than an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata  # type: ignore[import-untyped]

__all__ = ["CalibrationBin", "ScoreMetrics", "brier_score", "calibration_table", "precision_at_k", "roc_auc", "scored"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-count bin of predicted risk: its range, size, mean prediction and observed churn rate."""

    lower: float
    upper: float
    members: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class ScoreMetrics:
    """How well one score ranks (and, for a probability, predicts) churn on one labelled window."""

    members: int
    churn_rate: float
    auc: float | None
    precision_top_decile: float | None
    precision_at_100: float | None
    brier: float | None  # None for a score that is not a probability
    calibration: tuple[CalibrationBin, ...]  # empty for a score that is not a probability


def roc_auc(churned: npt.ArrayLike, score: npt.ArrayLike) -> float | None:
    r"""Area under the ROC curve, the Mann-Whitney statistic with ties counted half.

    .. math:: \mathrm{AUC} = \frac{\sum_{i: y_i = 1} \mathrm{rank}(s_i) - n_1 (n_1 + 1) / 2}{n_1 n_0}

    with average ranks of the scores; ``None`` when only one class is present.
    """
    y = np.asarray(churned, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def precision_at_k(churned: npt.ArrayLike, score: npt.ArrayLike, k: int) -> float | None:
    """Share of churners among the ``k`` highest scores (``None`` if ``k`` is not in 1..n).

    Members tied with the k-th score share the remaining places: they count with the churn rate of the tied
    group, the expected precision under a random order of the ties (a coarse score such as recency in days
    has many ties, and any fixed order of them would bias the figure).
    """
    y = np.asarray(churned, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    if not 1 <= k <= len(s):
        return None
    kth = np.partition(s, len(s) - k)[len(s) - k]
    above, tied = s > kth, s == kth
    places = k - int(above.sum())
    hits = y[above].sum() + places * y[tied].mean()
    return float(hits / k)


def brier_score(churned: npt.ArrayLike, probability: npt.ArrayLike) -> float | None:
    """Mean squared difference between predicted probability and outcome."""
    y = np.asarray(churned, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else None


def calibration_table(churned: npt.ArrayLike, probability: npt.ArrayLike, bins: int = 10) -> tuple[CalibrationBin, ...]:
    """Equal-count bins of the sorted predictions (deciles by default): mean predicted vs observed rate."""
    y = np.asarray(churned, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    return tuple(
        CalibrationBin(
            lower=float(p[part[0]]),
            upper=float(p[part[-1]]),
            members=len(part),
            mean_predicted=float(p[part].mean()),
            observed_rate=float(y[part].mean()),
        )
        for part in np.array_split(order, min(bins, len(p)))
        if len(part)
    )


def scored(churned: npt.ArrayLike, score: npt.ArrayLike, *, probability: bool) -> ScoreMetrics:
    """All metrics of one score; Brier and calibration only when the score is a probability."""
    y = np.asarray(churned, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    n = len(y)
    return ScoreMetrics(
        members=n,
        churn_rate=float(y.mean()) if n else 0.0,
        auc=roc_auc(y, s),
        precision_top_decile=precision_at_k(y, s, max(1, round(n / 10))),
        precision_at_100=precision_at_k(y, s, 100),
        brier=brier_score(y, s) if probability else None,
        calibration=calibration_table(y, s) if probability else (),
    )
