r"""Ranking metrics at K, and list-level measures of coverage, novelty and diversity.

For one user with ranked list :math:`r_1..r_K`, relevant set :math:`R` and hit
indicator :math:`h_j = [r_j \in R]` (the definitions of the published
MovieLens table, Microsoft "recommenders"):

- precision@K :math:`= \sum_j h_j / K`
- recall@K :math:`= \sum_j h_j / |R|`
- NDCG@K :math:`= \sum_j h_j / \log_2(j+1)` divided by the ideal
  :math:`\sum_{j=1}^{\min(K, |R|)} 1/\log_2(j+1)` (binary gains)
- MAP@K :math:`= \sum_j h_j \cdot \text{precision@j} / |R|`

each averaged over the evaluated users. Over all lists together:

- catalog coverage: distinct recommended items / train items;
- novelty: mean self-information :math:`-\log_2 p_i` of the recommended
  items, :math:`p_i` = share of train users who interacted with item i;
- intra-list diversity: mean over each list's item pairs of
  :math:`1 - \cos(v_a, v_b)`, averaged over lists; :math:`v` are multi-hot
  category vectors when the catalog has categories, else the items' columns
  of the (binarised) train matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from sklearn.preprocessing import normalize  # type: ignore[import-untyped]

from patron.recs.base import ItemCatalog

__all__ = [
    "RankingMetrics",
    "catalog_coverage",
    "category_vectors",
    "hit_matrix",
    "intra_list_diversity",
    "novelty",
    "ranking_metrics",
]

Ranked = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class RankingMetrics:
    """Mean precision, recall, NDCG and MAP at ``k`` over ``users`` users."""

    k: int
    users: int
    precision: float
    recall: float
    ndcg: float
    map: float


def hit_matrix(ranked: Ranked, relevant: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Whether each ranked item (rows x K, -1 = empty slot) is relevant for its row."""
    rel = relevant.tocsr()
    n_rows, n_cols = rel.shape
    rows = np.arange(ranked.shape[0], dtype=np.int64)
    wanted = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(rel.indptr)) * n_cols + rel.indices
    keys = rows[:, None] * n_cols + np.where(ranked >= 0, ranked, 0)
    return np.asarray(np.isin(keys, wanted) & (ranked >= 0))


def ranking_metrics(ranked: Ranked, relevant: sp.csr_matrix, k: int) -> RankingMetrics:
    """Precision, recall, NDCG and MAP at ``k``; rows of ``relevant`` align with ``ranked`` and are non-empty."""
    ranked = ranked[:, :k]
    n_relevant = np.diff(relevant.tocsr().indptr).astype(np.float64)
    if ranked.shape[0] == 0:
        return RankingMetrics(k, 0, 0.0, 0.0, 0.0, 0.0)
    if np.any(n_relevant == 0):
        raise ValueError("every evaluated row needs at least one relevant item")
    hits = hit_matrix(ranked, relevant).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    n_hits = hits.sum(axis=1)
    dcg = hits[:, : hits.shape[1]] @ discounts[: hits.shape[1]]
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k).astype(np.int64) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    average_precision = (hits * precision_at).sum(axis=1) / n_relevant
    return RankingMetrics(
        k=k,
        users=int(ranked.shape[0]),
        precision=float(np.mean(n_hits / k)),
        recall=float(np.mean(n_hits / n_relevant)),
        ndcg=float(np.mean(dcg / ideal)),
        map=float(np.mean(average_precision)),
    )


def catalog_coverage(ranked: Ranked, n_items: int) -> float:
    """Share of the ``n_items`` train items that appear in at least one list."""
    shown = np.unique(ranked[ranked >= 0])
    return float(len(shown) / n_items) if n_items else 0.0


def novelty(ranked: Ranked, train: sp.csr_matrix) -> float:
    """Mean self-information ``-log2(users with the item / users)`` of the recommended items."""
    binary = (train > 0).astype(np.float64)
    users_with = np.asarray(binary.sum(axis=0)).ravel()
    shown = ranked[ranked >= 0]
    if len(shown) == 0 or train.shape[0] == 0:
        return 0.0
    share = np.maximum(users_with[shown], 1.0) / train.shape[0]
    return float(np.mean(-np.log2(share)))


def category_vectors(catalog: ItemCatalog | None) -> sp.csr_matrix | None:
    """Multi-hot category vectors (items x categories; ``|`` separates several); None without categories."""
    if catalog is None:
        return None
    labels = [str(c).split("|") if str(c) else [] for c in catalog.category.tolist()]
    vocabulary = sorted({c for row in labels for c in row})
    if not vocabulary:
        return None
    position = {c: k for k, c in enumerate(vocabulary)}
    rows = [r for r, row in enumerate(labels) for _ in row]
    cols = [position[c] for row in labels for c in row]
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(labels), len(vocabulary)))


def intra_list_diversity(ranked: Ranked, vectors: sp.csr_matrix | np.ndarray[Any, Any]) -> float:
    """Mean over lists of the mean pairwise ``1 - cosine`` of the items' vectors (lists of < 2 items skipped)."""
    unit = sp.csr_matrix(normalize(sp.csr_matrix(vectors, dtype=np.float64), norm="l2", axis=1))
    values = []
    for row in ranked:
        items = row[row >= 0]
        n = len(items)
        if n < 2:
            continue
        sub = unit[items]
        gram = np.asarray((sub @ sub.T).todense())
        mean_similarity = (gram.sum() - np.trace(gram)) / (n * (n - 1))
        values.append(1.0 - mean_similarity)
    return float(np.mean(values)) if values else 0.0
