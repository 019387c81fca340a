"""Recommenders against the published reference tables of ../shared/data/README.md.

MovieLens 100k, the Microsoft "recommenders" benchmark's protocol (stratified
75/25 per user, top-10): the best published row is BiVAE with NDCG@10 0.475.
Our hybrid's parameters were chosen on a validation split carved from the
training part (``patron.recs.evaluation.search.TUNED``, found by ``patron recs
evaluate --search-budget``); the test split only measures them.

online-retail (invoices from 2011-11-09 held out; repeats counted, and new
items only) and taobao (each member's last active day held out, repeats
counted, K=20): the hybrid beats every single model and "buy again" in the
same run (README baselines: buy again 0.330 and EASE 0.325; EASE 0.099 new
items only; taobao buy again 0.130 and EASE 0.123).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patron.recs.evaluation.datasets import load_dataset
from patron.recs.evaluation.harness import ModelSpec, evaluate_models
from patron.recs.evaluation.protocols import make_split
from patron.recs.evaluation.search import TUNED, search_blend
from tests.conftest import shared_data

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
pytestmark = pytest.mark.slow

BIVAE_NDCG_AT_10 = 0.475  # README: BiVAE 0.146 / 0.475 / 0.412 / 0.219 (MAP / NDCG / P / R at 10)


def _root(folder: str) -> Path:
    return shared_data(folder).parent


def test_movielens_hybrid_beats_the_best_published_row() -> None:
    split = make_split(load_dataset("movielens-100k", root=_root("movielens_100k")), "ms-stratified")
    tuned = TUNED["movielens"]
    report = evaluate_models(split, [ModelSpec(model="hybrid", params=tuned["hybrid"]), ModelSpec(model="ease")], 10)
    hybrid, ease = report.results
    assert hybrid.error is None and ease.error is None
    assert ease.ndcg == pytest.approx(0.472, abs=0.0015)  # README: EASE (lambda 750) 0.472
    assert hybrid.ndcg is not None and hybrid.ndcg >= BIVAE_NDCG_AT_10
    assert hybrid.map is not None and hybrid.map >= 0.146


def test_movielens_blend_is_the_validation_optimum_of_a_small_grid() -> None:
    # The committed weights must win on validation among their neighbours (the test split plays no part).
    split = make_split(load_dataset("movielens-100k", root=_root("movielens_100k")), "ms-stratified")
    chosen = TUNED["movielens"]["hybrid"]
    components = [{"model": c["model"], "params": c["params"]} for c in chosen["components"]]
    weights = [c["weight"] for c in chosen["components"]]
    # the committed search covered 0, 0.25, 0.5 and 1 (175 directions, ~4 minutes); the test re-runs a subgrid
    grid = sorted({*weights, 1.0})
    folds = split.validation_folds(3)
    found = search_blend(components, folds, weights=grid, fusions=["linear"], seconds=600, k=10)
    best = [c["weight"] for c in found.best_params["components"]]
    assert found.best_score is not None
    chosen_score = max(t.score or 0.0 for t in found.trials if [c["weight"] for c in t.params["components"]] == weights)
    assert chosen_score >= found.best_score - 1e-9, (best, found.best_score, chosen_score)


# BPR needs minutes per fit on one core; its reference rows (README: 0.208 on online-retail) are far below.
SLOW_MODELS = {"bpr", "hybrid"}


@pytest.mark.parametrize(
    ("key", "dataset", "folder", "repeats", "k"),
    [
        ("online-retail-repeats", "online-retail", "online_retail", True, 10),
        ("online-retail-new", "online-retail", "online_retail", False, 10),
        # The committed taobao blend was the best of its validation search but not above buy_again there (mean
        # NDCG@20 over three folds 0.1190 against 0.1192); on test it beats every single model.
        ("taobao-repeats", "taobao", "taobao_userbehavior", True, 20),
    ],
)
def test_hybrid_beats_every_single_model_and_buy_again(
    key: str, dataset: str, folder: str, repeats: bool, k: int
) -> None:
    from patron.recs.models import load_all

    split = make_split(load_dataset(dataset, root=_root(folder)), "temporal", repeats=repeats)
    tuned = TUNED[key]
    singles = sorted(m for m in load_all() if m not in SLOW_MODELS)
    specs = [ModelSpec(model=m, params=tuned.get(m, {})) for m in singles]
    report = evaluate_models(split, [*specs, ModelSpec(model="hybrid", params=tuned["hybrid"])], k)
    by_model = {r.model: r for r in report.results}
    hybrid = by_model.pop("hybrid")
    assert hybrid.error is None and hybrid.ndcg is not None
    assert "buy_again" in by_model
    for name, result in by_model.items():
        # a single model that cannot run here (EASE on taobao's 48,689 items) has nothing to beat
        if result.error is None:
            assert result.ndcg is not None and hybrid.ndcg > result.ndcg, (name, result.ndcg, hybrid.ndcg)
