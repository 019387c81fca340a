"""Evaluate many models on one split in one run: full ranking, accuracy at K, coverage, novelty, diversity.

Every model is fitted on the split's train matrix (and the item catalog) and
ranks *all* train items for every evaluated user from that user's train
history; the user's train items are excluded unless repeats are counted. A
model that fails is reported with its error and the run goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from patron.recs.base import IntArray, Recommender, top_k
from patron.recs.evaluation.metrics import (
    catalog_coverage,
    category_vectors,
    intra_list_diversity,
    novelty,
    ranking_metrics,
)
from patron.recs.evaluation.protocols import Split

__all__ = ["EvaluationReport", "ModelResult", "ModelSpec", "evaluate_models", "fit_model", "rank_users", "score_spec"]

logger = logging.getLogger(__name__)
BATCH = 256


class ModelSpec(BaseModel):
    """A registered model name with keyword parameters, shown as ``label``."""

    model_config = ConfigDict(frozen=True)

    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.model


class ModelResult(BaseModel):
    """One model's figures on a split (``error`` set and figures empty when it failed)."""

    label: str
    model: str
    params: dict[str, Any]
    k: int
    users: int = 0
    precision: float | None = None
    recall: float | None = None
    ndcg: float | None = None
    map: float | None = None
    coverage: float | None = None
    novelty: float | None = None
    diversity: float | None = None
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    error: str | None = None


class EvaluationReport(BaseModel):
    """A comparison run: the split's shape and every model's result."""

    dataset: str
    protocol: str
    repeats_counted: bool
    k: int
    train_users: int
    train_items: int
    train_rows: int
    test_rows: int
    evaluated_users: int
    diversity_by: str
    results: list[ModelResult]
    searches: list[dict[str, Any]] = Field(default_factory=list)

    def best(self, *, metric: str = "ndcg", models: Sequence[str] | None = None) -> ModelResult | None:
        """The result with the highest ``metric`` (optionally among the given model names)."""
        ok = [r for r in self.results if r.error is None and (models is None or r.model in models)]
        return max(ok, key=lambda r: getattr(r, metric) or 0.0, default=None)


def _registry() -> dict[str, type[Recommender]]:
    from patron.recs.models import load_all

    return load_all()


def fit_model(spec: ModelSpec, split: Split, registry: Mapping[str, type[Recommender]] | None = None) -> Recommender:
    """Construct ``spec``'s model and fit it on the split's train matrix and catalog."""
    models = _registry() if registry is None else registry
    cls = models.get(spec.model)
    if cls is None:
        raise ValueError(f"unknown model {spec.model!r}; registered: {', '.join(sorted(models))}")
    return cls(**spec.params).fit(split.train, split.catalog)


def rank_users(model: Recommender, split: Split, users: IntArray, k: int) -> IntArray:
    """Top-``k`` train item indices (-1 padded) for the given train rows, scored from their train histories."""
    parts = []
    matrix = split.train.matrix
    for start in range(0, len(users), BATCH):
        rows = users[start : start + BATCH]
        history = matrix[rows]
        scores = model.scores(history, rows)
        idx, _ = top_k(scores, k, history if split.exclude_seen else None)
        parts.append(idx)
    if not parts:
        return np.zeros((0, k), dtype=np.int64)
    return np.vstack(parts).astype(np.int64)


def _diversity_vectors(split: Split) -> tuple[Any, str]:
    vectors = category_vectors(split.catalog)
    if vectors is not None:
        return vectors, "category"
    binary = (split.train.matrix > 0).astype(np.float32)
    return binary.T.tocsr(), "co-occurrence"


def _measure(spec: ModelSpec, split: Split, k: int, registry: Mapping[str, type[Recommender]] | None) -> ModelResult:
    began = time.perf_counter()
    model = fit_model(spec, split, registry)
    fitted = time.perf_counter()
    ranked = rank_users(model, split, split.users, k)
    predicted = time.perf_counter()
    accuracy = ranking_metrics(ranked, split.relevant[split.users], k)
    vectors, _ = _diversity_vectors(split)
    return ModelResult(
        label=spec.title,
        model=spec.model,
        params=spec.params,
        k=k,
        users=accuracy.users,
        precision=accuracy.precision,
        recall=accuracy.recall,
        ndcg=accuracy.ndcg,
        map=accuracy.map,
        coverage=catalog_coverage(ranked, split.train.n_items),
        novelty=novelty(ranked, split.train.matrix),
        diversity=intra_list_diversity(ranked, vectors),
        fit_seconds=fitted - began,
        predict_seconds=predicted - fitted,
    )


def score_spec(spec: ModelSpec, split: Split, k: int, registry: Mapping[str, type[Recommender]] | None = None) -> float:
    """NDCG@``k`` of one model on a split (the search's objective); no list measures."""
    model = fit_model(spec, split, registry)
    ranked = rank_users(model, split, split.users, k)
    return ranking_metrics(ranked, split.relevant[split.users], k).ndcg


def evaluate_models(
    split: Split,
    specs: Sequence[ModelSpec],
    k: int = 10,
    *,
    registry: Mapping[str, type[Recommender]] | None = None,
) -> EvaluationReport:
    """Fit and evaluate every model of ``specs`` on ``split``; a failing model is reported, not raised."""
    results = []
    for spec in specs:
        try:
            results.append(_measure(spec, split, k, registry))
        except Exception as exc:  # a broken model must not hide the others' results
            logger.warning("model failed", extra={"model": spec.title, "error": str(exc)})
            results.append(
                ModelResult(label=spec.title, model=spec.model, params=spec.params, k=k, error=str(exc) or repr(exc))
            )
    _, diversity_by = _diversity_vectors(split)
    return EvaluationReport(
        dataset=split.name,
        protocol=split.protocol,
        repeats_counted=split.repeats,
        k=k,
        train_users=split.train.n_users,
        train_items=split.train.n_items,
        train_rows=len(split.train_events),
        test_rows=split.test_rows,
        evaluated_users=len(split.users),
        diversity_by=diversity_by,
        results=results,
    )
