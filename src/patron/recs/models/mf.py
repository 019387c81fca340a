r"""Matrix factorization: implicit-feedback ALS and BPR.

Both keep user and item factors; the score of item :math:`i` for user vector
:math:`x_u` is :math:`x_u \cdot y_i + b_i` (:math:`b_i = 0` for ALS). A request
from a fitted user whose history is the fitted one uses the fitted user
factors; any other history (new feedback, an unknown member, a session) is
folded in by solving the ALS user equation against the fixed item factors,
so new feedback changes the list at once without retraining.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["Als", "Bpr", "FactorModel", "fold_in", "uniform_bpr"]

Sampling = Literal["uniform", "popularity"]


def fold_in(
    history: sp.csr_matrix,
    item_factors: np.ndarray[Any, Any],
    regularization: float,
    alpha: float,
    gram: np.ndarray[Any, Any] | None = None,
) -> FloatArray:
    r"""User vectors for history rows by the implicit-ALS user equation (Hu, Koren & Volinsky 2008).

    For a row with items :math:`I` and weights :math:`w_i`, confidence
    :math:`c_i = 1 + \alpha w_i` and preference 1 on :math:`I`, 0 elsewhere:

    .. math:: x = \left(Y^\top Y + Y_I^\top (C_I - I) Y_I + \lambda I\right)^{-1} Y_I^\top c_I

    An empty row gives the zero vector. ``gram`` is :math:`Y^\top Y` when the caller keeps it
    (it depends on the items only, so serving computes it once).
    """
    y = np.asarray(item_factors)
    f = y.shape[1]
    if gram is None:
        y64 = np.asarray(y, dtype=np.float64)
        gram = y64.T @ y64
    base = gram + regularization * np.eye(f)
    h = sp.csr_matrix(history, dtype=np.float64)
    out = np.zeros((h.shape[0], f), dtype=np.float32)
    for row in range(h.shape[0]):
        lo, hi = h.indptr[row], h.indptr[row + 1]
        if lo < hi:
            out[row] = _solve_user(y, base, h.indices[lo:hi], h.data[lo:hi], alpha)
    return out


def _solve_user(
    y: np.ndarray[Any, Any], base: np.ndarray[Any, Any], cols: IntArray, w: np.ndarray[Any, Any], alpha: float
) -> FloatArray:
    r"""One row of :func:`fold_in`: ``base`` is :math:`Y^\top Y + \lambda I`."""
    yi = np.asarray(y[cols], dtype=np.float64)  # only the history's rows: never the whole factor matrix
    a = base + (yi * (alpha * w)[:, None]).T @ yi
    return np.asarray(np.linalg.solve(a, yi.T @ (1.0 + alpha * w)), dtype=np.float32)


def uniform_bpr(
    matrix: sp.csr_matrix,
    factors: int,
    learning_rate: float,
    regularization: float,
    epochs: int,
    batch_size: int,
    seed: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""BPR (Rendle et al. 2009) by mini-batch SGD with negatives drawn uniformly from the catalog.

    Each epoch visits every positive (u, i) once in a random order and pairs it
    with a uniformly drawn item j that u has not interacted with (redrawn up to
    five times, then the triple is dropped). It ascends
    :math:`\ln \sigma(x_u \cdot (y_i - y_j) + b_i - b_j)` with L2 penalty
    ``regularization`` on the touched parameters. Returns user factors, item
    factors and item biases.
    """
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(matrix)
    x.sort_indices()
    n_users, n_items = x.shape
    pos_u = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(x.indptr))
    pos_i = x.indices.astype(np.int64)
    seen = _PositiveSet(pos_u * n_items + pos_i, n_users * n_items)
    scale = np.float32(0.1 / np.sqrt(factors))
    user_f = (rng.standard_normal((n_users, factors)) * scale).astype(np.float32)
    item_f = (rng.standard_normal((n_items, factors)) * scale).astype(np.float32)
    bias = np.zeros(n_items, dtype=np.float32)
    lr, reg = np.float32(learning_rate), np.float32(regularization)
    for _ in range(epochs):
        order = rng.permutation(len(pos_u))
        for start in range(0, len(order), batch_size):
            sel = order[start : start + batch_size]
            u, i = pos_u[sel], pos_i[sel]
            j = rng.integers(0, n_items, len(sel))
            for _attempt in range(5):
                bad = seen.contains(u * n_items + j)
                if not bad.any():
                    break
                j[bad] = rng.integers(0, n_items, int(bad.sum()))
            ok = ~seen.contains(u * n_items + j)
            u, i, j = u[ok], i[ok], j[ok]
            uf, fi, fj = user_f[u], item_f[i], item_f[j]
            diff = fi - fj
            z = np.einsum("nf,nf->n", uf, diff) + bias[i] - bias[j]
            g = (1.0 / (1.0 + np.exp(np.clip(z, -30, 30)))).astype(np.float32)  # d ln sigma(z) / dz
            gu = g[:, None] * uf
            user_f += _scatter(u, lr * (g[:, None] * diff - reg * uf), n_users)
            item_f += _scatter(np.concatenate([i, j]), lr * np.vstack([gu - reg * fi, -gu - reg * fj]), n_items)
            both = np.concatenate([i, j])
            steps = np.concatenate([g - reg * bias[i], -g - reg * bias[j]])
            bias += (lr * np.bincount(both, weights=steps, minlength=n_items)).astype(np.float32)
    return user_f, item_f, bias


def _scatter(rows: np.ndarray[Any, Any], values: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    """Sum ``values`` rows into ``n`` rows by index (an unbuffered add, faster than ``np.add.at``)."""
    ones = np.ones(len(rows), dtype=np.float32)
    summed: np.ndarray[Any, Any] = sp.csr_matrix((ones, (rows, np.arange(len(rows)))), shape=(n, len(rows))) @ values
    return summed


class _PositiveSet:
    """Membership of (user, item) keys: a dense bit table when it is small, else binary search."""

    DENSE_CELLS = 100_000_000

    def __init__(self, sorted_keys: np.ndarray[Any, Any], cells: int) -> None:
        self.keys = sorted_keys
        self.table: np.ndarray[Any, Any] | None = None
        if cells <= self.DENSE_CELLS:
            self.table = np.zeros(cells, dtype=bool)
            self.table[sorted_keys] = True

    def contains(self, keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if self.table is not None:
            hit: np.ndarray[Any, Any] = self.table[keys]
            return hit
        if len(self.keys) == 0:
            return np.zeros(len(keys), dtype=bool)
        pos = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
        found: np.ndarray[Any, Any] = self.keys[pos] == keys
        return found


class FactorModel(Recommender):
    """Shared scoring, fold-in and persistence of the factor models (what a candidate index serves)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.user_factors: FloatArray = np.zeros((0, 0), dtype=np.float32)
        self.item_factors: FloatArray = np.zeros((0, 0), dtype=np.float32)
        self.item_bias: FloatArray = np.zeros(0, dtype=np.float32)
        self._gram: np.ndarray[Any, Any] | None = None
        self._factors_t: np.ndarray[Any, Any] | None = None
        self._base: np.ndarray[Any, Any] | None = None
        self._biased = False

    def _fold_in_parameters(self) -> tuple[float, float]:
        """(regularization, alpha) of the fold-in equation."""
        raise NotImplementedError

    def _serving_cache(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Y^T Y (float64) and the transposed item factors, computed once per fitted or loaded model."""
        if self._gram is None or self._factors_t is None:
            y = np.asarray(self.item_factors, dtype=np.float64)
            self._gram = y.T @ y
            self._biased = bool(self.item_bias.any())
            self._factors_t = np.ascontiguousarray(self.item_factors.T, dtype=np.float32)
        return self._gram, self._factors_t

    def _unchanged(self, history: sp.csr_matrix, users: IntArray | None) -> np.ndarray[Any, Any]:
        """Rows that are a fitted user with exactly the fitted history."""
        same = np.zeros(history.shape[0], dtype=bool)
        if users is None or history.shape[1] != self.history_matrix.shape[1]:
            return same
        h, fitted = sp.csr_matrix(history), self.history_matrix
        for row, user in enumerate(np.asarray(users, dtype=np.int64).tolist()):
            if 0 <= user < self.user_factors.shape[0]:
                a, b, c, d = h.indptr[row], h.indptr[row + 1], fitted.indptr[user], fitted.indptr[user + 1]
                same[row] = (
                    b - a == d - c
                    and np.array_equal(h.indices[a:b], fitted.indices[c:d])
                    and np.array_equal(h.data[a:b], fitted.data[c:d])
                )
        return same

    def user_vectors(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Fitted factors where the history is the fitted one, folded-in vectors elsewhere."""
        history = sp.csr_matrix(history, dtype=np.float32)
        same = self._unchanged(history, users)
        out = np.zeros((history.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        if same.any():
            assert users is not None
            out[same] = self.user_factors[np.asarray(users)[same]]
        if (~same).any():
            reg, alpha = self._fold_in_parameters()
            gram, _ = self._serving_cache()
            out[~same] = fold_in(history[~same], self.item_factors, reg, alpha, gram)
        return out

    def user_vector(self, user: int, cols: IntArray, weights: FloatArray) -> FloatArray:
        """One request's vector: the fitted factors of ``user`` (-1: none), else the history folded in.

        The caller passes ``user`` only when the history (``cols``, ``weights``) is the fitted one.
        """
        if 0 <= user < self.user_factors.shape[0]:
            return np.asarray(self.user_factors[user], dtype=np.float32)
        if self._base is None:
            reg, _ = self._fold_in_parameters()
            gram, _ = self._serving_cache()
            self._base = gram + reg * np.eye(gram.shape[0])
        if not len(cols):
            return np.zeros(self.item_factors.shape[1], dtype=np.float32)
        return _solve_user(self.item_factors, self._base, cols, weights, self._fold_in_parameters()[1])

    def item_scores(self, vector: FloatArray, items: IntArray | None = None) -> FloatArray:
        r""":math:`x \cdot y_i + b_i` of one user vector for ``items`` (every item if None)."""
        _, factors_t = self._serving_cache()
        if items is None:
            out: FloatArray = np.asarray(vector[None, :] @ factors_t, dtype=np.float32)[0]
            return out + self.item_bias if self._biased else out
        picked = np.asarray(self.item_factors[items] @ vector, dtype=np.float32)
        return picked + self.item_bias[items] if self._biased else picked

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        r""":math:`x_u \cdot y_i + b_i` for every item."""
        vectors = self.user_vectors(history, users)
        _, factors_t = self._serving_cache()
        out = vectors @ factors_t
        if self._biased:
            out += self.item_bias[None, :]
        return np.asarray(out, dtype=np.float32)

    def item_vectors(self) -> np.ndarray[Any, Any] | sp.csr_matrix | None:
        """The item factors."""
        return self.item_factors

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors, "item_bias": self.item_bias}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self._gram = self._factors_t = self._base = None
        self.user_factors = np.asarray(state["user_factors"], dtype=np.float32)
        self.item_factors = np.asarray(state["item_factors"], dtype=np.float32)
        self.item_bias = np.asarray(state["item_bias"], dtype=np.float32)


@register
class Als(FactorModel):
    r"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008), fitted with implicit's CPU solver.

    Preference :math:`p_{ui} = 1` where user :math:`u` interacted with item
    :math:`i` (0 elsewhere) and confidence :math:`c_{ui} = 1 + \alpha w_{ui}`
    (1 elsewhere); minimizes
    :math:`\sum_{u,i} c_{ui} (p_{ui} - x_u \cdot y_i)^2 + \lambda (\lVert X \rVert^2 + \lVert Y \rVert^2)`.
    implicit reads a matrix entry :math:`v` as confidence :math:`v`, so it is
    given :math:`1 + \alpha w` with its own ``alpha`` left at 1.

    Parameters
    ----------
    factors, regularization (:math:`\lambda`), alpha (:math:`\alpha`), iterations, seed
    threads : int
        Threads of implicit's solver (0: all cores); the result does not depend on it.

    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 42,
        threads: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            seed=seed,
            threads=threads,
        )

    def _fold_in_parameters(self) -> tuple[float, float]:
        return float(self.params["regularization"]), float(self.params["alpha"])

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        confidence = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        confidence.data = 1.0 + float(self.params["alpha"]) * confidence.data
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads only contend
            model = AlternatingLeastSquares(
                factors=int(self.params["factors"]),
                regularization=float(self.params["regularization"]),
                alpha=1.0,
                iterations=int(self.params["iterations"]),
                random_state=int(self.params["seed"]),
                num_threads=int(self.params["threads"]),
            )
            model.fit(confidence, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.item_bias = np.zeros(data.n_items, dtype=np.float32)


@register
class Bpr(FactorModel):
    r"""Bayesian Personalized Ranking (Rendle et al. 2009).

    ``sampling="uniform"`` (the default) draws negatives uniformly from the
    catalog (:func:`uniform_bpr`, seeded numpy mini-batch SGD);
    ``sampling="popularity"`` runs implicit's BPR, which draws a negative from
    the interaction entries, i.e. in proportion to item popularity. On
    MovieLens 100k uniform sampling ranks far better (docs/recs-models.md).
    The history is binarized. Fold-in uses the ALS user equation on the BPR
    item factors with ``fold_in_l2`` and confidence 1 + weight, keeping the
    learned item biases.

    Parameters
    ----------
    factors, learning_rate, regularization, iterations (epochs), batch_size, seed, sampling, fold_in_l2

    """

    name: ClassVar[str] = "bpr"

    def __init__(
        self,
        *,
        factors: int = 200,
        learning_rate: float = 0.01,
        regularization: float = 0.001,
        iterations: int = 100,
        batch_size: int = 4096,
        seed: int = 42,
        sampling: Sampling = "uniform",
        fold_in_l2: float = 1.0,
    ) -> None:
        if sampling not in ("uniform", "popularity"):
            raise ValueError(f"sampling must be 'uniform' or 'popularity', not {sampling!r}")
        super().__init__(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            batch_size=batch_size,
            seed=seed,
            sampling=sampling,
            fold_in_l2=fold_in_l2,
        )

    def _fold_in_parameters(self) -> tuple[float, float]:
        return float(self.params["fold_in_l2"]), 1.0

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        binary = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        p = self.params
        if p["sampling"] == "uniform":
            self.user_factors, self.item_factors, self.item_bias = uniform_bpr(
                binary,
                int(p["factors"]),
                float(p["learning_rate"]),
                float(p["regularization"]),
                int(p["iterations"]),
                int(p["batch_size"]),
                int(p["seed"]),
            )
            return
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=int(p["factors"]),
                learning_rate=float(p["learning_rate"]),
                regularization=float(p["regularization"]),
                iterations=int(p["iterations"]),
                random_state=int(p["seed"]),
                num_threads=1,  # one thread: implicit's lock-free SGD is only reproducible single-threaded
            )
            model.fit(binary, show_progress=False)
        # implicit keeps the item bias as the last item factor, against a constant 1 in the user factors
        self.user_factors = np.asarray(model.user_factors[:, :-1], dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors[:, :-1], dtype=np.float32)
        self.item_bias = np.asarray(model.item_factors[:, -1], dtype=np.float32)
