"""The churn report as the API and CLI return it (the build writes it to ``churn.json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["CalibrationBinRead", "ChurnReport", "FeatureImportance", "ScoreMetricsRead", "WindowRead"]


class CalibrationBinRead(BaseModel):
    lower: float
    upper: float
    members: int
    mean_predicted: float
    observed_rate: float


class ScoreMetricsRead(BaseModel):
    """A score's performance on the validation window; ``brier``/``calibration`` only for probabilities."""

    members: int
    churn_rate: float
    auc: float | None
    precision_top_decile: float | None
    precision_at_100: float | None
    brier: float | None
    calibration: list[CalibrationBinRead]


class WindowRead(BaseModel):
    """Members described at a cut-off and, when labelled, their churn rate over ``[cut_off, cut_off + H)``."""

    cut_off: datetime
    members: int
    churn_rate: float | None = None
    rows_used: int | None = None


class FeatureImportance(BaseModel):
    """Permutation importance: mean drop in validation AUC when the feature is shuffled (and its spread)."""

    feature: str
    auc_drop: float
    std: float


class ChurnReport(BaseModel):
    """What the churn step did, and how the model and the baselines scored on the later window."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "insufficient_history"]
    reason: str | None = None
    as_of: datetime
    horizon_days: int
    training: WindowRead | None = None
    validation: WindowRead | None = None
    scoring: WindowRead | None = None
    metrics: dict[str, ScoreMetricsRead | None] = {}
    feature_importance: list[FeatureImportance] = []
    method: dict[str, object] = {}
    seconds: dict[str, float] = {}
