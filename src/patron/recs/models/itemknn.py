"""Item-based nearest neighbours with cosine or BM25 similarity."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import Affinity, FloatArray, IntArray, Interactions, ItemCatalog, Recommender, csr_rows, register

__all__ = ["ItemKnn", "bm25_weight", "top_k_per_row"]

Similarity = Literal["cosine", "bm25"]
BLOCK_ROWS = 512  # similarity rows computed at once (their co-occurrences are held in memory)


def bm25_weight(user_items: sp.csr_matrix, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    r"""BM25-weight a users x items matrix, items as documents and users as terms.

    As implicit's ``bm25_weight(user_items.T, K1, B).T``: with :math:`N` the number
    of items, :math:`n_u` the number of items of user :math:`u`, :math:`L_i` the
    summed weight of item :math:`i` and :math:`\bar L` its mean over items,

    .. math::

        w'_{ui} = w_{ui} \frac{K_1 + 1}{K_1 \left((1 - B) + B L_i / \bar L\right) + w_{ui}}
                  \left(\log N - \log(1 + n_u)\right).
    """
    x = sp.coo_matrix(user_items, dtype=np.float64)
    n_items = float(x.shape[1])
    idf = np.log(n_items) - np.log1p(np.bincount(x.row, minlength=x.shape[0]))
    lengths = np.bincount(x.col, weights=x.data, minlength=x.shape[1])
    mean_length = lengths.mean() if len(lengths) else 1.0
    norm = (1.0 - b) + b * lengths / (mean_length if mean_length > 0 else 1.0)
    data = x.data * (k1 + 1.0) / (k1 * norm[x.col] + x.data) * idf[x.row]
    return sp.csr_matrix((data.astype(np.float32), (x.row, x.col)), shape=x.shape)


def top_k_per_row(block: sp.coo_matrix, k: int) -> np.ndarray[Any, Any]:
    """Mask of the entries among the ``k`` largest positive ones of their row (ties: lower column first)."""
    order = np.lexsort((block.col, -block.data, block.row))
    sorted_rows = block.row[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    rank = np.arange(len(order)) - first
    keep = np.zeros(len(order), dtype=bool)
    keep[order] = (rank < k) & (block.data[order] > 0)
    return keep


def _implicit_knn(x: sp.csr_matrix, norms: np.ndarray[Any, Any], k: int, shrink: float) -> sp.csr_matrix:
    """Top-k similarities by implicit's all-pairs kNN (several times faster than blocks of scipy products).

    Valid when the similarity is a dot product of rescaled columns (cosine without shrinkage, BM25);
    asks for k + 1 neighbours, since implicit counts an item as its own neighbour, then drops the diagonal.
    """
    from implicit.nearest_neighbours import all_pairs_knn

    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0) if shrink == 0 else None
    weighted = x @ sp.diags(scale) if scale is not None else x
    pairs = all_pairs_knn(sp.csr_matrix(weighted, dtype=np.float64), k + 1, show_progress=False, num_threads=0)
    sim = sp.coo_matrix(pairs)
    off = sim.row != sim.col
    block = sp.coo_matrix(
        (
            sim.data[off].astype(np.float32) / np.float32(1.0 + shrink if scale is None else 1.0),
            (sim.row[off], sim.col[off]),
        ),
        shape=sim.shape,
    )
    keep = np.ones(block.nnz, dtype=bool)
    over = np.bincount(block.row, minlength=block.shape[0]) > k  # rows whose own item was not among the k + 1
    if over.any():
        sub = np.flatnonzero(over[block.row])
        keep[sub] = top_k_per_row(
            sp.coo_matrix((block.data[sub], (block.row[sub], block.col[sub])), shape=sim.shape), k
        )
    out = sp.csr_matrix((block.data[keep], (block.row[keep], block.col[keep])), shape=sim.shape, dtype=np.float32)
    out.sort_indices()
    return out


@register
class ItemKnn(Recommender):
    r"""Item-kNN: score = history @ S with a sparse item x item similarity S.

    ``cosine``: :math:`S_{ij} = \frac{x_i \cdot x_j}{\lVert x_i \rVert \lVert x_j \rVert + s}`
    over the item columns :math:`x_i` of the users x items matrix, with
    shrinkage :math:`s`. ``bm25``: :math:`S_{ij} = x'_i \cdot x'_j` over the
    BM25-weighted columns (:func:`bm25_weight`, implicit's ``BM25Recommender``),
    divided by :math:`1 + s` (shrinkage only rescales it). Each item keeps its
    ``neighbours`` most similar other items (the diagonal is zero), so a
    history item votes for its neighbours with its weight.

    Parameters
    ----------
    similarity : "cosine" or "bm25"
    neighbours : int
        Neighbours kept per item.
    shrinkage : float
        :math:`s` above; damps similarities supported by few users (cosine).
    k1, b : float
        BM25's :math:`K_1` and :math:`B`.

    """

    name: ClassVar[str] = "itemknn"

    def __init__(
        self,
        *,
        similarity: Similarity = "bm25",
        neighbours: int = 100,
        shrinkage: float = 0.0,
        k1: float = 100.0,
        b: float = 0.8,
    ) -> None:
        if similarity not in ("cosine", "bm25"):
            raise ValueError(f"similarity must be 'cosine' or 'bm25', not {similarity!r}")
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        super().__init__(similarity=similarity, neighbours=neighbours, shrinkage=shrinkage, k1=k1, b=b)
        self.similarity: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self._entries: tuple[sp.csr_matrix, np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        x = sp.csr_matrix(data.matrix, dtype=np.float32)
        shrink = float(self.params["shrinkage"])
        if self.params["similarity"] == "bm25":
            x = bm25_weight(x, float(self.params["k1"]), float(self.params["b"]))
            norms = np.ones(x.shape[1], dtype=np.float32)
        else:
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float32).ravel())
        k = int(self.params["neighbours"])
        if self.params["similarity"] == "bm25" or shrink == 0:
            self.similarity = _implicit_knn(x, norms, k, shrink)
            return
        xt = x.T.tocsr()
        n = x.shape[1]
        step = max(1, min(n, BLOCK_ROWS))
        rows: list[np.ndarray[Any, Any]] = []
        cols: list[np.ndarray[Any, Any]] = []
        values: list[np.ndarray[Any, Any]] = []
        for start in range(0, n, step):
            stop = min(n, start + step)
            dots = sp.coo_matrix(xt[start:stop] @ x)
            vals = dots.data.astype(np.float32)
            if self.params["similarity"] == "bm25":
                vals /= np.float32(1.0 + shrink)
            else:
                denom = norms[dots.row + start] * norms[dots.col] + np.float32(shrink)
                vals = np.where(denom > 0, vals / np.where(denom > 0, denom, 1), 0).astype(np.float32)
            vals[dots.row + start == dots.col] = 0.0  # an item is not its own neighbour
            block = sp.coo_matrix((vals, (dots.row, dots.col)), shape=dots.shape)
            keep = top_k_per_row(block, int(self.params["neighbours"]))
            rows.append(block.row[keep] + start)
            cols.append(block.col[keep])
            values.append(block.data[keep])
        sim = sp.csr_matrix(
            (
                np.concatenate(values or [np.zeros(0)]),
                (np.concatenate(rows or [np.zeros(0)]), np.concatenate(cols or [np.zeros(0)])),
            ),
            shape=(n, n),
            dtype=np.float32,
        )
        sim.sort_indices()
        self.similarity = sim

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Score history @ S (weights of the history items times their similarities)."""
        h = sp.csr_matrix(history, dtype=np.float32)
        if h.shape[0] == 1:
            return self._score_row(h.indices, h.data)[None, :]
        return np.asarray((h @ self.similarity).toarray(), dtype=np.float32)

    def score_history(self, items: IntArray, weights: FloatArray, user: int = -1) -> FloatArray:
        """One history's scores, straight from the rows of S (no sparse matrix built)."""
        return self._score_row(np.asarray(items), np.asarray(weights, dtype=np.float32))

    def _score_row(self, cols: IntArray, weights: FloatArray) -> FloatArray:
        """One history's scores without a sparse product (a served list): its items' rows of S, weighted, summed.

        The same float32 sums in the same order as the sparse product, so the same scores to the bit.
        """
        row, items, values = csr_rows(self.similarity, np.asarray(cols, dtype=np.int64))
        out = np.zeros(self.similarity.shape[1], dtype=np.float32)
        np.add.at(out, items, values * np.asarray(weights, dtype=np.float32)[row])
        return out

    def item_vectors(self) -> np.ndarray[Any, Any] | sp.csr_matrix | None:
        """Rows of the similarity matrix."""
        return self.similarity

    def reason_affinity(self) -> Affinity | None:
        """S itself: an anchor leads to an item by their similarity, through which it adds to the item's score."""
        return self._affinity

    def _affinity(self, items: IntArray, anchors: IntArray) -> np.ndarray[Any, Any]:
        """``S[anchors][:, items].T``: each (item, anchor) pair looked up among S's entries by a binary search.

        A page asks for 10 items against a few dozen anchors: a few hundred look-ups, where reading the
        anchors' whole rows (``neighbours`` entries each) would touch thousands of entries.
        """
        out = np.zeros((len(items), len(anchors)), dtype=np.float32)
        if len(items) == 0 or len(anchors) == 0:
            return out
        keys, values = self._entry_keys()
        if len(keys) == 0:
            return out
        width = self.similarity.shape[1]
        wanted = (
            np.asarray(anchors, dtype=keys.dtype)[None, :] * width + np.asarray(items, dtype=keys.dtype)[:, None]
        ).ravel()
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hit = keys[at] == wanted
        out.ravel()[hit] = values[at[hit]]
        return out

    def _entry_keys(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """S's entries as sorted keys ``row * columns + column`` and their values, made on first use.

        int32 keys (4 bytes an entry) while every key fits, else int64; duplicates are summed first, as
        S's dense form sums them.
        """
        entries = self._entries
        if entries is not None and entries[0] is self.similarity:
            return entries[1], entries[2]
        m = self.similarity
        if not m.has_canonical_format:
            m = m.copy()
            m.sum_duplicates()  # also sorts each row's columns
        rows, width = m.shape
        dtype = np.int32 if rows * width <= np.iinfo(np.int32).max else np.int64
        row_of = np.repeat(np.arange(rows, dtype=dtype), np.diff(m.indptr))
        keys = row_of * dtype(width) + m.indices.astype(dtype)
        self._entries = (self.similarity, keys, np.asarray(m.data, dtype=np.float32))
        return keys, self._entries[2]

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"similarity": self.similarity}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.similarity = sp.csr_matrix(state["similarity"], dtype=np.float32)
