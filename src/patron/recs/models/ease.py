"""EASE: the closed-form shallow autoencoder of Steck (2019).

H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["Ease", "CatalogTooLargeError"]


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

    Parameters
    ----------
    l2 : float
        The ridge penalty :math:`\lambda` (750 suits MovieLens 100k).
    binarize : bool
        Fit and score on 0/1 presence instead of the interaction weights.
    max_items : int
        The largest catalog accepted.
    top_k : int or None
        If set, keep only the ``top_k`` largest-magnitude weights of each row of
        :math:`B` (a sparse matrix for serving); None keeps :math:`B` dense.

    """

    name: ClassVar[str] = "ease"

    def __init__(
        self, *, l2: float = 750.0, binarize: bool = False, max_items: int = 20_000, top_k: int | None = None
    ) -> None:
        if not l2 > 0:
            raise ValueError("l2 must be positive")
        super().__init__(l2=l2, binarize=binarize, max_items=max_items, top_k=top_k)
        self.weights: np.ndarray[Any, Any] | sp.csr_matrix = np.zeros((0, 0), dtype=np.float32)

    def _input(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(matrix, dtype=np.float32)
        if self.params["binarize"]:
            x = x.copy()
            x.data = (x.data != 0).astype(np.float32)
        return x

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        n = data.n_items
        if n > int(self.params["max_items"]):
            raise CatalogTooLargeError(
                f"EASE needs a dense {n:,} x {n:,} matrix; the catalog has more than max_items="
                f"{int(self.params['max_items']):,} items (raise max_items or use itemknn or als)"
            )
        x = self._input(data.matrix)
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
        out = self._input(history) @ self.weights
        if sp.issparse(out):
            out = out.toarray()
        return np.asarray(out, dtype=np.float32)

    def item_vectors(self) -> np.ndarray[Any, Any] | sp.csr_matrix | None:
        """Rows of :math:`B`: the items each item predicts."""
        return self.weights

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"weights": self.weights}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        w = state["weights"]
        self.weights = w.astype(np.float32) if sp.issparse(w) else np.asarray(w, dtype=np.float32)
