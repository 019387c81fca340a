r"""Session-based item-kNN for anonymous visitors.

Fitted on sessions: :class:`Interactions` whose users are session ids. Two
items are similar when they occur in the same sessions; with :math:`X` the
binary sessions x items matrix, :math:`C = X^\top X` and :math:`n_i = C_{ii}`,

.. math:: S_{ij} = \frac{C_{ij}}{\sqrt{n_i n_j}} \quad (i \ne j),

keeping each item's ``neighbors`` most similar items (Ludewig & Jannach 2018,
"Evaluation of session-based recommendation algorithms", item-kNN).

A request is the visitor's session so far, encoded in the history row: the
weight of an item is its position in the session (1 = first viewed, larger =
later; an item seen twice takes its latest position). The latest item counts
fully and each step back multiplies by ``decay``:

.. math:: \mathrm{score}_j = \sum_{i \in h} \mathrm{decay}^{\,p_{\max} - p_i} S_{ij}.

The fitted sessions' own histories are stored in this encoding (positions by
the last time each item was seen), so ``recommend(session_id)`` works too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register, top_k

__all__ = ["SessionKNN", "positions", "recency_weights"]

#: score cells per dense block when keeping each item's best neighbours
BLOCK_CELLS = 2_000_000


def positions(data: Interactions) -> sp.csr_matrix:
    """Users x items matrix of each item's position (1-based) in its user's time order, by last sighting."""
    if len(data.users) == 0:
        return sp.csr_matrix((data.n_users, data.n_items), dtype=np.float32)
    order = np.lexsort((data.times, data.users))[::-1]
    pair = data.users[order] * data.n_items + data.items[order]
    _, first = np.unique(pair, return_index=True)  # first in reversed order = last sighting
    last = order[first]
    users, items, times = data.users[last], data.items[last], data.times[last]
    by_time = np.lexsort((items, times, users))
    users, items = users[by_time], items[by_time]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts) + 1
    return sp.csr_matrix(
        (rank.astype(np.float32), (users, items)), shape=(data.n_users, data.n_items), dtype=np.float32
    )


def recency_weights(history: sp.csr_matrix, decay: float) -> sp.csr_matrix:
    """Position-encoded histories turned into weights ``decay ** (latest position - position)``."""
    h = sp.csr_matrix(history, dtype=np.float32, copy=True)
    lengths = np.diff(h.indptr)
    nonempty = lengths > 0
    if not nonempty.any():
        return h
    row_max = np.zeros(h.shape[0], dtype=np.float32)
    row_max[nonempty] = np.maximum.reduceat(h.data, h.indptr[:-1][nonempty])
    steps = np.repeat(row_max, lengths) - h.data
    h.data = np.power(np.float32(decay), steps).astype(np.float32)
    return h


def _top_neighbors(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (ties: lower column first), in dense blocks of rows."""
    sim = sim.tocsr()
    if k <= 0 or np.diff(sim.indptr).max(initial=0) <= k:
        return sim
    step = max(1, BLOCK_CELLS // max(sim.shape[1], 1))
    rows, cols, vals = [], [], []
    for start in range(0, sim.shape[0], step):
        idx, val = top_k(sim[start : start + step].toarray(), k)
        keep = (idx >= 0) & (val > 0)
        rows.append(np.nonzero(keep)[0] + start)
        cols.append(idx[keep])
        vals.append(val[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape, dtype=np.float32
    )


@register
class SessionKNN(Recommender):
    """Item-kNN over session co-occurrence, weighting the session's latest items most.

    Parameters
    ----------
    neighbors : int
        Similar items kept per item (0 keeps all).
    decay : float
        Weight multiplier per step back in the session, in (0, 1]; 1 weights all items equally.

    """

    name: ClassVar[str] = "session_knn"

    def __init__(self, *, neighbors: int = 100, decay: float = 0.8) -> None:
        if not 0 < decay <= 1:
            raise ValueError("decay must be in (0, 1]")
        if neighbors < 0:
            raise ValueError("neighbors must not be negative")
        super().__init__(neighbors=int(neighbors), decay=float(decay))
        self.similarity: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        binary = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        counts = np.asarray(binary.sum(axis=0), dtype=np.float32).ravel()
        co = (binary.T @ binary).tocsr().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        inv = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        sim = sp.csr_matrix(sp.diags(inv) @ co @ sp.diags(inv), dtype=np.float32)
        self.similarity = _top_neighbors(sim, self.params["neighbors"])
        self.history_matrix = positions(data)

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Recency-weighted sum of the similarities of the session's items (see the module docstring)."""
        weights = recency_weights(history, self.params["decay"])
        return np.asarray((weights @ self.similarity).todense(), dtype=np.float32)

    def item_vectors(self) -> sp.csr_matrix:
        """Each item's row of session similarities."""
        return self.similarity

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items most often in the same sessions as ``item_id`` (its similarity row), itself excluded."""
        col = self._item_index.get(item_id)
        if col is None:
            return []
        row = np.asarray(self.similarity[col].todense(), dtype=np.float32)
        row[0, col] = -np.inf
        row[row <= 0] = -np.inf
        idx, val = top_k(row, k)
        return [(str(self.item_ids[i]), float(v)) for i, v in zip(idx[0], val[0], strict=True) if i >= 0]

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"similarity": self.similarity}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.similarity = sp.csr_matrix(state["similarity"], dtype=np.float32)
