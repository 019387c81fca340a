"""EASE: the closed-form shallow autoencoder of Steck (2019).

H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["Ease", "CatalogTooLargeError"]


#: a pruned item's score per unit of its popularity share (below any weight EASE learns in practice)
FALLBACK = 1e-6


class CatalogTooLargeError(ValueError):
    """The catalog has more items than EASE's dense item x item matrix is allowed to hold."""


@register
class Ease(Recommender):
    r"""EASE item-item regression with a zero diagonal.

    With :math:`X` the users x items matrix (binarized if asked),

    .. math::

        P = (X^\top X + \lambda I)^{-1}, \qquad
        B = I - P \,\mathrm{diag}(1 / \mathrm{diag}(P)),

    so :math:`B` has a zero diagonal, and the scores of a history row
    :math:`h` are :math:`h B`. The item x item matrices are dense float32:
    ``max_items`` items need :math:`8 \cdot n^2` bytes while fitting, so a
    larger catalog is refused with :class:`CatalogTooLargeError`.

    With ``min_item_users`` above 1, items that fewer distinct users have are
    left out of :math:`X` (EASE learns next to nothing for them, and the
    largest catalogs are mostly such long-tail items): the Gram matrix holds
    only the kept items, ``max_items`` applies to those, and a pruned item
    scores a popularity fallback, :math:`10^{-6}` times its share of users
    (distinct users divided by the maximum plus one), so it ranks by
    popularity among the items EASE gives zero.

    Parameters
    ----------
    l2 : float
        The ridge penalty :math:`\lambda` (750 suits MovieLens 100k).
    binarize : bool
        Fit and score on 0/1 presence instead of the interaction weights.
    max_items : int
        The largest catalog accepted (after pruning).
    top_k : int or None
        If set, keep only the ``top_k`` largest-magnitude weights of each row of
        :math:`B` (a sparse matrix for serving); None keeps :math:`B` dense.
    min_item_users : int
        Keep only items with at least this many distinct users in the fit (1, the default, keeps all).

    """

    name: ClassVar[str] = "ease"

    def __init__(
        self,
        *,
        l2: float = 750.0,
        binarize: bool = False,
        max_items: int = 20_000,
        top_k: int | None = None,
        min_item_users: int = 1,
    ) -> None:
        if not l2 > 0:
            raise ValueError("l2 must be positive")
        if int(min_item_users) < 1:
            raise ValueError("min_item_users must be at least 1")
        super().__init__(l2=l2, binarize=binarize, max_items=max_items, top_k=top_k, min_item_users=int(min_item_users))
        self.weights: np.ndarray[Any, Any] | sp.csr_matrix = np.zeros((0, 0), dtype=np.float32)
        #: columns of the kept items (empty when nothing is pruned) and every item's popularity fallback
        self.kept: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int64)
        self.fallback: FloatArray = np.zeros(0, dtype=np.float32)

    def _input(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(matrix, dtype=np.float32)
        if self.params["binarize"]:
            x = x.copy()
            x.data = (x.data != 0).astype(np.float32)
        return x

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        x = self._input(data.matrix)
        self.kept = np.zeros(0, dtype=np.int64)
        self.fallback = np.zeros(0, dtype=np.float32)
        minimum = int(self.params.get("min_item_users", 1))
        if minimum > 1:
            users = np.diff(sp.csc_matrix(data.matrix).indptr).astype(np.float64)
            kept = np.flatnonzero(users >= minimum).astype(np.int64)
            if len(kept) < data.n_items:
                self.kept = kept
                share = users / (users.max(initial=0.0) + 1.0)
                self.fallback = (FALLBACK * share).astype(np.float32)
                self.fallback[kept] = 0.0
                x = sp.csr_matrix(x[:, kept])
        n = x.shape[1]
        if n > int(self.params["max_items"]):
            raise CatalogTooLargeError(
                f"EASE needs a dense {n:,} x {n:,} matrix; the catalog has more than max_items="
                f"{int(self.params['max_items']):,} items (raise max_items or min_item_users, or use itemknn or als)"
            )
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
        gram[np.diag_indices(n)] += np.float32(self.params["l2"])
        p = np.linalg.inv(gram)
        del gram
        b = p / -np.diag(p)[None, :]
        b[np.diag_indices(n)] = 0.0
        self.weights = self._sparsify(b.astype(np.float32, copy=False))

    def _sparsify(self, b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | sp.csr_matrix:
        k = self.params["top_k"]
        n = b.shape[0]
        if k is None or int(k) >= n:
            return b
        k = int(k)
        keep = np.argpartition(-np.abs(b), k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        values = np.take_along_axis(b, keep, axis=1).ravel()
        out = sp.csr_matrix((values, (rows, keep.ravel())), shape=b.shape, dtype=np.float32)
        out.eliminate_zeros()
        return out

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """:math:`h B` for each history row :math:`h`."""
        x = self._input(history)
        if len(self.kept):
            x = sp.csr_matrix(x[:, self.kept])
        out = x @ self.weights
        if sp.issparse(out):
            out = out.toarray()
        if not len(self.kept):
            return np.asarray(out, dtype=np.float32)
        full = np.broadcast_to(self.fallback, (x.shape[0], len(self.fallback))).copy()
        full[:, self.kept] = out
        return full

    def item_vectors(self) -> np.ndarray[Any, Any] | sp.csr_matrix | None:
        """Rows of :math:`B`: the items each item predicts (pruned items' rows and columns empty)."""
        if not len(self.kept):
            return self.weights
        n = len(self.fallback)
        embed = sp.csr_matrix(
            (np.ones(len(self.kept), dtype=np.float32), (self.kept, np.arange(len(self.kept)))),
            shape=(n, len(self.kept)),
        )
        return sp.csr_matrix(embed @ sp.csr_matrix(self.weights) @ embed.T, dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        if not len(self.kept):
            return {"weights": self.weights}
        return {"weights": self.weights, "kept": self.kept, "fallback": self.fallback}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        w = state["weights"]
        self.weights = w.astype(np.float32) if sp.issparse(w) else np.asarray(w, dtype=np.float32)
        self.kept = np.asarray(state.get("kept", np.zeros(0)), dtype=np.int64)
        self.fallback = np.asarray(state.get("fallback", np.zeros(0)), dtype=np.float32)
