r"""Association rules for "bought together".

Baskets are the events grouped by (user, time): in the warehouse every line
of an order carries the order's member and timestamp, so one (member, time)
pair is one order. Data without times (all zero) has one basket per user.
An item counts once per basket, whatever its quantity or weight.

With :math:`N` baskets, :math:`n_i` the baskets holding item :math:`i` and
:math:`n_{ij}` those holding both :math:`i` and :math:`j` (from the sparse
product :math:`B^\top B` of the binary basket x item matrix :math:`B`):

.. math::

    \mathrm{support}(i, j) = n_{ij} / N, \quad
    \mathrm{confidence}(i \to j) = n_{ij} / n_i, \quad
    \mathrm{lift}(i, j) = n_{ij} N / (n_i n_j).

A history scores item :math:`j` by :math:`\sum_{i \in h} m(i \to j)` over the
distinct items of the history, where :math:`m` is the ``metric`` (confidence
or lift) of the rules that pass the thresholds (Agrawal, Imielinski & Swami
1993, "Mining association rules between sets of items in large databases").
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["AssociationRules", "basket_matrix"]

Metric = Literal["confidence", "lift"]


def basket_matrix(data: Interactions) -> sp.csr_matrix:
    """The binary baskets x items matrix: one row per distinct (user, time) pair."""
    if len(data.users) == 0:
        return sp.csr_matrix((0, data.n_items), dtype=np.float32)
    _, time_code = np.unique(data.times, return_inverse=True)
    keys = data.users * (int(time_code.max()) + 1) + time_code.ravel()
    _, basket = np.unique(keys, return_inverse=True)
    basket = np.asarray(basket, dtype=np.int64).ravel()
    matrix = sp.csr_matrix(
        (np.ones(len(basket), dtype=np.float32), (basket, data.items)),
        shape=(int(basket.max()) + 1, data.n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


@register
class AssociationRules(Recommender):
    r"""Pairwise association rules mined from baskets.

    Parameters
    ----------
    metric : "confidence" or "lift"
        The rule strength summed over the history's items when scoring.
    min_count : int
        Baskets a pair must share to form a rule (guards lift against chance pairs).
    min_support : float
        Minimum pair support :math:`n_{ij} / N`.
    min_confidence : float
        Minimum confidence of the rule :math:`i \to j`.

    """

    name: ClassVar[str] = "assoc"

    def __init__(
        self,
        *,
        metric: Metric = "confidence",
        min_count: int = 1,
        min_support: float = 0.0,
        min_confidence: float = 0.0,
    ) -> None:
        if metric not in ("confidence", "lift"):
            raise ValueError(f"metric must be 'confidence' or 'lift', not {metric!r}")
        if min_count < 1:
            raise ValueError("min_count must be at least 1")
        super().__init__(
            metric=metric,
            min_count=int(min_count),
            min_support=float(min_support),
            min_confidence=float(min_confidence),
        )
        self.pair_counts: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self.item_counts: FloatArray = np.zeros(0, dtype=np.float32)
        self.n_baskets = 0
        self._strength: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    # ----------------------------------------------------------------- fitting
    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        baskets = basket_matrix(data)
        self.n_baskets = baskets.shape[0]
        self.item_counts = np.asarray(baskets.sum(axis=0), dtype=np.float32).ravel()
        pairs = (baskets.T @ baskets).tocsr().astype(np.float32)
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        self.pair_counts = self._prune(pairs)
        self._strength = self._rule_matrix(self.params["metric"])

    def _prune(self, pairs: sp.csr_matrix) -> sp.csr_matrix:
        """Drop the pairs below ``min_count`` or ``min_support`` (symmetric, so kept as counts)."""
        n = max(self.n_baskets, 1)
        keep = (pairs.data >= self.params["min_count"]) & (pairs.data / n >= self.params["min_support"])
        pairs.data[~keep] = 0
        pairs.eliminate_zeros()
        pairs.sort_indices()
        return pairs

    def _rule_matrix(self, metric: str) -> sp.csr_matrix:
        """Rule strength of i -> j (rows i, columns j) for the rules above ``min_confidence``."""
        counts = self.pair_counts.tocoo()
        antecedent = self.item_counts[counts.row]
        confidence = counts.data / np.maximum(antecedent, 1.0)
        if metric == "lift":
            value = counts.data * self.n_baskets / np.maximum(antecedent * self.item_counts[counts.col], 1.0)
        else:
            value = confidence
        keep = confidence >= self.params["min_confidence"]
        return sp.csr_matrix(
            (value[keep].astype(np.float32), (counts.row[keep], counts.col[keep])),
            shape=self.pair_counts.shape,
        )

    # ----------------------------------------------------------------- scoring
    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Sum of rule strengths from the history's distinct items to every item."""
        present = sp.csr_matrix(history, dtype=np.float32, copy=True)
        present.data = (present.data > 0).astype(np.float32)
        return np.asarray((present @ self._strength).todense(), dtype=np.float32)

    def rules_for(self, item_id: str, k: int = 10, metric: str = "lift") -> list[dict[str, Any]]:
        """The ``k`` strongest rules ``item_id -> other`` ranked by ``metric`` (support, confidence or lift).

        Each rule is ``{"item", "support", "confidence", "lift"}``; an unknown item has none.
        """
        if metric not in ("support", "confidence", "lift"):
            raise ValueError(f"metric must be support, confidence or lift, not {metric!r}")
        row = self._item_index.get(item_id)
        if row is None or self.n_baskets == 0:
            return []
        start, end = self.pair_counts.indptr[row], self.pair_counts.indptr[row + 1]
        cols = self.pair_counts.indices[start:end]
        both = self.pair_counts.data[start:end].astype(np.float64)
        n_i = float(self.item_counts[row])
        support = both / self.n_baskets
        confidence = both / n_i
        lift = both * self.n_baskets / (n_i * self.item_counts[cols].astype(np.float64))
        keep = confidence >= self.params["min_confidence"]
        table = {"support": support, "confidence": confidence, "lift": lift}
        order = np.lexsort((cols, -support, -table[metric]))
        order = order[keep[order]][:k]
        return [
            {
                "item": str(self.item_ids[cols[j]]),
                "support": float(support[j]),
                "confidence": float(confidence[j]),
                "lift": float(lift[j]),
            }
            for j in order
        ]

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items bought together with ``item_id``, by the model's metric; itself excluded."""
        metric = self.params["metric"]
        return [(rule["item"], rule[metric]) for rule in self.rules_for(item_id, k, metric=metric)]

    # -------------------------------------------------------------- persisting
    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {
            "pair_counts": self.pair_counts,
            "item_counts": self.item_counts,
            "n_baskets": np.asarray([self.n_baskets], dtype=np.int64),
        }

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.pair_counts = sp.csr_matrix(state["pair_counts"], dtype=np.float32)
        self.item_counts = np.asarray(state["item_counts"], dtype=np.float32)
        self.n_baskets = int(np.asarray(state["n_baskets"])[0])
        self._strength = self._rule_matrix(self.params["metric"])
