"""The churn step of the build: train with a temporal cut-off, validate on a later window, score everyone.

With horizon ``H`` and the build's ``as_of``:

- training: features at ``as_of - 2H``, labelled on ``[as_of - 2H, as_of - H)``;
- validation: features at ``as_of - H``, labelled on ``[as_of - H, as_of)``, a window the training never
  saw; the model and the baselines (``1 - P(alive)``, BG/NBD's P(no purchase), days since the last
  purchase) are scored on it in the same run;
- scoring: the model refitted on the validation window's features and labels, applied to the features at
  ``as_of``; every member who ever bought gets a churn risk over ``[as_of, as_of + H)`` and up to three
  reason codes (feature identifiers of :data:`patron.churn.features.FEATURES`).

Too little history (too few labelled members, or a single class) is not an error: the result then has an
empty table and a report saying why.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Final

import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.special import expit  # type: ignore[import-untyped]

from patron.churn.baseline import bgnbd_scores
from patron.churn.features import (
    FEATURES,
    MISSING_CREDIT,
    TREND_DAYS,
    OrderFacts,
    cached_order_facts,
    churn_labels,
    member_features,
)
from patron.churn.metrics import ScoreMetrics, roc_auc, scored
from patron.churn.model import MIN_REASON_LOG_ODDS, MONOTONE, ChurnModel, fit_churn_model, row_digest
from patron.churn.schemas import ChurnReport
from patron.errors import NotFoundError, ValidationError

__all__ = [
    "MAX_TRAINING_ROWS",
    "REPORT_FILE",
    "TABLE_SCHEMA",
    "ChurnResult",
    "churn_step",
    "read_churn_report",
    "write_churn_report",
]

log = logging.getLogger(__name__)

MIN_MEMBERS: Final = 100  # labelled members needed at each cut-off
MIN_CLASS: Final = 20  # and as many churners as stayers at least
MAX_TRAINING_ROWS: Final = 50_000  # beyond this a hash sample (see _Frame); the fit time grows with rows
IMPORTANCE_ROWS: Final = 20_000
IMPORTANCE_REPEATS: Final = 5
RANDOM_STATE: Final = 0
REASONS: Final = 3
REPORT_FILE: Final = "churn.json"
TABLE_SCHEMA: Final = pa.schema(
    [
        pa.field("member_key", pa.string(), nullable=False),
        pa.field("churn_risk", pa.float64()),
        *(pa.field(f"reason_{i}", pa.string()) for i in range(1, REASONS + 1)),
    ]
)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ChurnResult:
    """Per-member risk and reasons (Arrow, :data:`TABLE_SCHEMA`) and the step's report."""

    table: pa.Table
    summary: dict[str, Any]

    def report(self) -> dict[str, Any]:
        """The JSON-serialisable report (a copy)."""
        loaded: dict[str, Any] = json.loads(json.dumps(self.summary))
        return loaded


@dataclass(frozen=True)
class _Frame:
    """Members described at one cut-off: keys, feature matrix, purchase-day summary, labels.

    A labelled frame is in :func:`~patron.churn.model.row_digest` order, a pseudo-random order fixed by
    the rows' values: its first rows are a fair sample, and everything drawn from it (the training sample,
    the importance sample, the order of ties in the calibration table) is the same whatever the member keys
    or the engine's row order. The scoring frame is in member-key order.
    """

    cut_off: datetime
    keys: pa.ChunkedArray
    x: FloatArray
    first_day: FloatArray
    last_day: FloatArray
    churned: npt.NDArray[np.int64] | None

    def take(self, rows: npt.NDArray[np.intp]) -> _Frame:
        churned = None if self.churned is None else self.churned[rows]
        keys = self.keys.take(pa.array(rows))
        return _Frame(self.cut_off, keys, self.x[rows], self.first_day[rows], self.last_day[rows], churned)

    def window(self, rows_used: int | None = None) -> dict[str, Any]:
        rate = None if self.churned is None or not len(self.churned) else float(self.churned.mean())
        return {"cut_off": self.cut_off.isoformat(), "members": len(self.x), "churn_rate": rate, "rows_used": rows_used}


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _frame(facts: OrderFacts, cut_off: datetime, horizon: int | None) -> _Frame:
    table = member_features(facts, cut_off)
    if horizon is not None:
        table = table.join(churn_labels(facts, cut_off, horizon), "member_key")
    arrow = (table if horizon is not None else table.order_by("member_key")).to_pyarrow()
    column = {name: arrow.column(name).to_numpy().astype(np.float64) for name in (*FEATURES, "first_day", "last_day")}
    x = np.column_stack([column[name] for name in FEATURES]) if arrow.num_rows else np.empty((0, len(FEATURES)))
    frame = _Frame(
        cut_off=cut_off,
        keys=arrow.column("member_key"),
        x=x,
        first_day=column["first_day"],
        last_day=column["last_day"],
        churned=None if horizon is None else arrow.column("churned").to_numpy().astype(np.int64),
    )
    return frame if frame.churned is None else frame.take(np.argsort(row_digest(x, frame.churned), kind="stable"))


def _check(as_of: datetime, horizon_days: int) -> None:
    if as_of.tzinfo is not None or as_of.time() != dtime():
        raise ValidationError(f"as_of must be a naive midnight (the day after the history), not {as_of}", field="as_of")
    if not 1 <= horizon_days <= 366:
        raise ValidationError("the horizon must be 1 to 366 days", field="horizon_days")


def _lacks(frame: _Frame, name: str) -> str | None:
    """Why a labelled window cannot train or validate a model, or None."""
    assert frame.churned is not None
    churners = int(frame.churned.sum())
    stayers = len(frame.churned) - churners
    if len(frame.churned) < MIN_MEMBERS:
        return f"{name} window at {frame.cut_off:%Y-%m-%d}: {len(frame.churned)} members, {MIN_MEMBERS} needed"
    if min(churners, stayers) < MIN_CLASS:
        return (
            f"{name} window at {frame.cut_off:%Y-%m-%d}: {churners} churners and {stayers} stayers, "
            f"{MIN_CLASS} of each needed"
        )
    return None


def churn_step(
    orders: ir.Table, lines: ir.Table, products: ir.Table, as_of: datetime, horizon_days: int = 90
) -> ChurnResult:
    """Train, validate and score the churn model on the warehouse tables as of ``as_of``."""
    _check(as_of, horizon_days)
    clock = _Clock()
    horizon = timedelta(days=horizon_days)
    with cached_order_facts(orders, lines, products) as facts:
        train = _frame(facts, as_of - 2 * horizon, horizon_days)
        valid = _frame(facts, as_of - horizon, horizon_days)
        current = _frame(facts, as_of, None)
    clock.lap("features")
    head = {"as_of": as_of.isoformat(), "horizon_days": horizon_days, "method": _method()}
    windows = {"training": train.window(), "validation": valid.window(), "scoring": current.window()}
    problem = _lacks(train, "training") or _lacks(valid, "validation")
    if problem is None:
        try:
            return _train_and_score(train, valid, current, horizon_days, head, clock)
        except ValidationError as exc:  # the data cannot carry a model: say so, do not fail the build
            problem = str(exc)
    log.warning("churn model not trained", extra={"reason": problem})
    report = {"status": "insufficient_history", "reason": problem, **head, **windows, "seconds": clock.laps}
    return ChurnResult(TABLE_SCHEMA.empty_table(), report)


def _train_and_score(
    train: _Frame, valid: _Frame, current: _Frame, horizon_days: int, head: dict[str, Any], clock: _Clock
) -> ChurnResult:
    # Three stages, each timed: validate a model fitted on the earlier window, refit, score.
    rng = np.random.default_rng(RANDOM_STATE)
    trained, used = _fit(train)
    clock.lap("fit_training_window")
    metrics = _validation_metrics(trained, valid, horizon_days)
    importance = _permutation_importance(trained, valid, rng)
    clock.lap("validation")
    scorer, refit_used = _fit(valid)
    clock.lap("fit_validation_window")
    table = _scores(scorer, current)
    clock.lap("scoring")
    report = {
        "status": "ok",
        "reason": None,
        **head,
        "training": train.window(used),
        "validation": valid.window(refit_used),
        "scoring": current.window(),
        "metrics": metrics,
        "feature_importance": importance,
        "seconds": clock.laps,
    }
    log.info("churn model trained", extra={"members": current.x.shape[0], "auc": metrics["model"]["auc"]})
    return ChurnResult(table, report)


def _fit(frame: _Frame) -> tuple[ChurnModel, int]:
    assert frame.churned is not None
    rows = slice(0, MAX_TRAINING_ROWS)  # the frame is in digest order: its head is a fair sample
    model = fit_churn_model(
        frame.x[rows], frame.churned[rows], FEATURES, missing_credit=MISSING_CREDIT, random_state=RANDOM_STATE
    )
    return model, len(frame.x[rows])


def _as_dict(metrics: ScoreMetrics | None) -> dict[str, Any] | None:
    return None if metrics is None else asdict(metrics)


def _validation_metrics(model: ChurnModel, valid: _Frame, horizon_days: int) -> dict[str, Any]:
    assert valid.churned is not None
    y = valid.churned
    purchase_days = valid.x[:, FEATURES.index("purchase_days")]
    bgnbd = bgnbd_scores(
        purchase_days, valid.first_day, valid.last_day, valid.cut_off.replace(tzinfo=UTC).timestamp(), horizon_days
    )
    recency = valid.x[:, FEATURES.index("recency_days")]
    return {
        "model": _as_dict(scored(y, model.risk(valid.x), probability=True)),
        "p_alive": None if bgnbd is None else _as_dict(scored(y, 1 - bgnbd.p_alive, probability=True)),
        "bgnbd_no_purchase": None if bgnbd is None else _as_dict(scored(y, bgnbd.p_no_purchase, probability=True)),
        "recency": _as_dict(scored(y, recency, probability=False)),
    }


def _permutation_importance(model: ChurnModel, valid: _Frame, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Mean drop in validation AUC when one feature's values are shuffled, on a sample of members.

    Shuffling a feature shuffles its term of the additive log-odds and nothing else, so each repeat is a
    column swap in the per-member terms.
    """
    assert valid.churned is not None
    rows = slice(0, IMPORTANCE_ROWS)  # digest order: a fair sample
    terms, y = model.terms(valid.x[rows]), valid.churned[rows]
    total = terms.sum(axis=1)
    base = roc_auc(y, total)
    if base is None:
        return []
    out = []
    for j, name in enumerate(FEATURES):
        drops = [
            base - (roc_auc(y, total - terms[:, j] + terms[rng.permutation(len(y)), j]) or 0.5)
            for _ in range(IMPORTANCE_REPEATS)
        ]
        out.append({"feature": name, "auc_drop": float(np.mean(drops)), "std": float(np.std(drops))})
    return sorted(out, key=lambda item: -item["auc_drop"])


def _scores(model: ChurnModel, current: _Frame) -> pa.Table:
    terms = model.terms(current.x)
    risk = expit(model.offset + terms.sum(axis=1))
    reasons = model.reasons(current.x, top=REASONS, terms=terms)
    names = pa.array(FEATURES, pa.string())
    columns: dict[str, Any] = {"member_key": current.keys, "churn_risk": pa.array(risk, pa.float64())}
    for i in range(REASONS):
        columns[f"reason_{i + 1}"] = names.take(pa.array(reasons[:, i], mask=reasons[:, i] < 0))
    return pa.table(columns, schema=TABLE_SCHEMA)


def _method() -> dict[str, Any]:
    return {
        "model": "gradient-boosted trees (HistGradientBoostingClassifier), one feature per tree: an additive model",
        "features": list(FEATURES),
        "monotone": dict(MONOTONE),
        "trend_days": TREND_DAYS,
        "max_training_rows": MAX_TRAINING_ROWS,
        "importance_rows": IMPORTANCE_ROWS,
        "random_state": RANDOM_STATE,
        "reasons": f"up to {REASONS} features raising the log-odds by more than {MIN_REASON_LOG_ODDS} "
        "against the average member (Shapley values of the additive model)",
    }


def write_churn_report(result: ChurnResult, build_dir: Path) -> Path:
    """Write the report as ``churn.json`` into a build directory."""
    path = build_dir / REPORT_FILE
    path.write_text(json.dumps(result.report(), indent=2))
    return path


def read_churn_report(build_dir: Path) -> ChurnReport:
    """The churn report of a build; NotFoundError when the build has none."""
    path = build_dir / REPORT_FILE
    if not path.is_file():
        raise NotFoundError("this build has no churn report: rebuild with `patron build`")
    return ChurnReport.model_validate_json(path.read_text())
