"""Ranking and list metrics against values worked out by hand; the harness on a tiny model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from patron.recs.base import IntArray, Interactions, Recommender
from patron.recs.evaluation.datasets import load_dataset
from patron.recs.evaluation.harness import ModelSpec, evaluate_models
from patron.recs.evaluation.metrics import (
    catalog_coverage,
    intra_list_diversity,
    novelty,
    ranking_metrics,
)
from patron.recs.evaluation.protocols import make_split
from patron.recs.evaluation.report import markdown_table, svg_chart


def _relevant(rows: list[list[int]], n_cols: int) -> sp.csr_matrix:
    r = [i for i, row in enumerate(rows) for _ in row]
    c = [j for row in rows for j in row]
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_cols))


def test_accuracy_at_k_follows_the_published_definitions() -> None:
    # Given two users: one with hits at ranks 2 and 3 of 4 relevant items, one with its single item first
    ranked = np.array([[3, 1, 7], [5, -1, -1]], dtype=np.int64)
    relevant = _relevant([[1, 7, 9, 11], [5]], 12)
    # When
    m = ranking_metrics(ranked, relevant, 3)
    # Then (by hand: log2 discounts, ideal over min(K, #relevant), AP divided by #relevant)
    ndcg_first = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert m.users == 2
    assert m.precision == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m.recall == pytest.approx((0.5 + 1.0) / 2)
    assert m.ndcg == pytest.approx((ndcg_first + 1.0) / 2)
    assert m.map == pytest.approx(((1 / 2 + 2 / 3) / 4 + 1.0) / 2)


def test_a_perfect_and_an_empty_ranking() -> None:
    relevant = _relevant([[0, 1]], 5)
    perfect = ranking_metrics(np.array([[1, 0, 4]]), relevant, 3)
    assert (perfect.ndcg, perfect.recall, perfect.map) == (pytest.approx(1.0), 1.0, 1.0)
    empty = ranking_metrics(np.array([[-1, -1, -1]]), relevant, 3)
    assert (empty.ndcg, empty.precision, empty.map) == (0.0, 0.0, 0.0)


def test_coverage_novelty_and_diversity() -> None:
    ranked = np.array([[0, 1], [0, 2]], dtype=np.int64)
    assert catalog_coverage(ranked, 4) == pytest.approx(3 / 4)
    # items 0, 1, 2 are held by 4, 2 and 1 of 4 users: self-information 0, 1 and 2 bits
    train = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1], [3, 0, 0, 0]], dtype=np.float32))
    assert novelty(ranked, train) == pytest.approx((0 + 1 + 0 + 2) / 4)
    # categories: 0 = a, 1 = a, 2 = a|b  ->  list 1: 1 - 1 = 0; list 2: 1 - 1/sqrt(2)
    vectors = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32))
    assert intra_list_diversity(ranked, vectors) == pytest.approx((0 + 1 - 1 / math.sqrt(2)) / 2)


class FavouriteItem(Recommender):
    """Scores every item by its index: item ``first`` is always recommended first."""

    name = "favourite"

    def _fit(self, data: Interactions, items: Any) -> None:
        self._n = data.n_items

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> Any:
        return np.tile(-np.arange(self._n, dtype=np.float32), (history.shape[0], 1))

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        return None


def _events_file(tmp_path: Path) -> Path:
    rows = [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u1", "d"), ("u2", "a"), ("u2", "c"), ("u2", "d"), ("u2", "b")]
    path = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=["user", "item"]).assign(category=["x", "y", "x", "y", "x", "x", "y", "y"]).to_csv(
        path, index=False
    )
    return path


def test_the_harness_ranks_all_train_items_and_reports_each_model(tmp_path: Path) -> None:
    # Given a tiny log split 50/50 per user, a model that always ranks the items in index order, and a broken spec
    split = make_split(load_dataset(str(_events_file(tmp_path))), "random", seed=3, test_fraction=0.5)
    registry: dict[str, type[Recommender]] = {"favourite": FavouriteItem}
    specs = [ModelSpec(model="favourite"), ModelSpec(model="missing", label="no such model")]
    # When
    report = evaluate_models(split, specs, k=2, registry=registry)
    # Then the figures equal those recomputed by hand from the split
    good, broken = report.results
    assert broken.error is not None and "unknown model" in broken.error
    assert report.evaluated_users == 2 and good.users == 2
    items = split.train.item_ids.tolist()
    expected = []
    for row in split.users:
        seen = set(split.train.matrix[row].indices)
        top = [i for i in range(len(items)) if i not in seen][:2]
        wanted = set(split.relevant[row].indices)
        expected.append(sum(1 for i in top if i in wanted) / 2)
    assert good.precision == pytest.approx(float(np.mean(expected)))
    assert good.fit_seconds >= 0 and good.predict_seconds >= 0
    assert report.diversity_by == "category"
    assert "favourite" in markdown_table(report)
    assert svg_chart(report).startswith("<svg")
