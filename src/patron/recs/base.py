"""The contract every recommendation model keeps.

A model is fitted on :class:`Interactions` (a users x items matrix of
positive weights, plus the event log it came from) and, if it reads item
attributes, an :class:`ItemCatalog`. Everything else follows from one
method, :meth:`Recommender.scores`: the score of every item for a batch of
*histories* (rows of a users x items matrix). Because scoring takes a
history rather than a fitted user id, a member's new feedback changes their
list at once (the history row changes; no retrain), an anonymous session is
scored the same way, and a member unknown to the model is simply an empty
or short history.

Models persist as a JSON header and a NumPy ``.npz`` of arrays, never as a
pickle, so loading a model file cannot execute code.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

__all__ = [
    "MODEL_REGISTRY",
    "Affinity",
    "FloatArray",
    "IntArray",
    "csr_rows",
    "Interactions",
    "ItemCatalog",
    "Recommender",
    "load_model",
    "register",
    "top_k",
]

FloatArray = np.ndarray[Any, np.dtype[np.float32]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
#: (items, anchors) -> a len(items) x len(anchors) table of how strongly each anchor leads to each item
Affinity = Callable[[IntArray, IntArray], np.ndarray[Any, Any]]

FORMAT_VERSION = 1


def csr_rows(m: sp.csr_matrix, rows: IntArray) -> tuple[IntArray, IntArray, np.ndarray[Any, Any]]:
    """The stored entries of ``rows`` of a CSR matrix: (position in ``rows``, column, value) per entry.

    Straight from ``indptr``/``indices``/``data``: slicing the matrix builds and checks a new one, which
    costs more than the arithmetic for a handful of rows.
    """
    starts = m.indptr[rows].astype(np.int64)
    lengths = m.indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total, dtype=np.int64)
    return np.repeat(np.arange(len(rows), dtype=np.int64), lengths), m.indices[take], m.data[take]


@dataclass(frozen=True)
class Interactions:
    """Who interacted with what, as an event log and as a summed matrix.

    ``users`` and ``items`` index into ``user_ids`` and ``item_ids``; ``weights``
    are positive; ``times`` are seconds since the epoch (UTC) or all zero when
    the source has no time. ``matrix`` is the users x items CSR sum of weights.
    """

    user_ids: np.ndarray[Any, np.dtype[np.str_]]
    item_ids: np.ndarray[Any, np.dtype[np.str_]]
    users: IntArray
    items: IntArray
    weights: FloatArray
    times: np.ndarray[Any, np.dtype[np.float64]]
    matrix: sp.csr_matrix = field(repr=False)

    @classmethod
    def from_events(
        cls,
        users: Sequence[str] | np.ndarray[Any, Any],
        items: Sequence[str] | np.ndarray[Any, Any],
        weights: Sequence[float] | np.ndarray[Any, Any] | None = None,
        times: Sequence[float] | np.ndarray[Any, Any] | None = None,
        *,
        item_ids: Sequence[str] | np.ndarray[Any, Any] | None = None,
    ) -> Interactions:
        """Index raw (user, item, weight, time) events.

        ``item_ids``, if given, fixes the item universe and its order (items
        outside it are dropped); otherwise it is the sorted distinct items.
        Users are the sorted distinct users.
        """
        user_arr = np.asarray(users).astype(str)
        item_arr = np.asarray(items).astype(str)
        n = len(user_arr)
        if len(item_arr) != n:
            raise ValueError("users and items differ in length")
        w = np.ones(n, dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        t = np.zeros(n, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
        if len(w) != n or len(t) != n:
            raise ValueError("weights and times must match the events in length")
        uid, u_idx = np.unique(user_arr, return_inverse=True)
        if item_ids is None:
            iid, i_idx = np.unique(item_arr, return_inverse=True)
        else:
            iid = np.asarray(item_ids).astype(str)
            order = np.argsort(iid, kind="stable")
            pos = np.searchsorted(iid[order], item_arr)
            pos = np.clip(pos, 0, max(len(iid) - 1, 0))
            known = (len(iid) > 0) & (iid[order][pos] == item_arr) if len(iid) else np.zeros(n, dtype=bool)
            i_idx = np.where(known, order[pos], -1)
            keep = i_idx >= 0
            user_arr, u_idx, i_idx, w, t = user_arr[keep], u_idx[keep], i_idx[keep], w[keep], t[keep]
            uid, u_idx = np.unique(user_arr, return_inverse=True)
        return cls.from_indices(uid, iid, u_idx, i_idx, w, t)

    @classmethod
    def from_indices(
        cls,
        user_ids: np.ndarray[Any, Any],
        item_ids: np.ndarray[Any, Any],
        users: np.ndarray[Any, Any],
        items: np.ndarray[Any, Any],
        weights: np.ndarray[Any, Any],
        times: np.ndarray[Any, Any] | None = None,
    ) -> Interactions:
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float32)
        t = np.zeros(len(u), dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
        if len(w) and not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite")
        matrix = sp.csr_matrix((w, (u, i)), shape=(len(user_ids), len(item_ids)), dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return cls(np.asarray(user_ids).astype(str), np.asarray(item_ids).astype(str), u, i, w, t, matrix)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self) -> dict[str, int]:
        return {u: k for k, u in enumerate(self.user_ids.tolist())}

    def item_index(self) -> dict[str, int]:
        return {v: k for k, v in enumerate(self.item_ids.tolist())}

    def history(self, items: Mapping[str, float]) -> sp.csr_matrix:
        """One history row (1 x items) from item ids and weights; unknown items are ignored."""
        index = self.item_index()
        cols = [index[i] for i in items if i in index]
        vals = [float(items[i]) for i in items if i in index]
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.zeros(len(cols), dtype=np.int64), np.asarray(cols))),
            shape=(1, self.n_items),
        )


@dataclass(frozen=True)
class ItemCatalog:
    """Item attributes for content models and serving rules, aligned to ``item_ids``."""

    item_ids: np.ndarray[Any, np.dtype[np.str_]]
    title: np.ndarray[Any, Any]
    category: np.ndarray[Any, Any]
    brand: np.ndarray[Any, Any]
    price: np.ndarray[Any, np.dtype[np.float64]]

    def aligned(self, item_ids: np.ndarray[Any, Any]) -> ItemCatalog:
        """The catalog reordered to ``item_ids``; items it lacks get empty attributes."""
        index = {v: k for k, v in enumerate(self.item_ids.tolist())}
        pos = np.asarray([index.get(i, -1) for i in np.asarray(item_ids).tolist()], dtype=np.int64)
        have = pos >= 0

        def pick(col: np.ndarray[Any, Any], empty: Any) -> np.ndarray[Any, Any]:
            out = np.full(len(pos), empty, dtype=object if col.dtype == object else col.dtype)
            out[have] = col[pos[have]]
            return out

        return ItemCatalog(
            np.asarray(item_ids).astype(str),
            pick(self.title.astype(object), ""),
            pick(self.category.astype(object), ""),
            pick(self.brand.astype(object), ""),
            pick(self.price.astype(np.float64), np.nan),
        )


def top_k(scores: np.ndarray[Any, Any], k: int, exclude: sp.csr_matrix | None = None) -> tuple[IntArray, FloatArray]:
    """Best ``k`` columns per row, highest first; ``exclude``'s non-zeros are never chosen.

    Excluded and non-finite scores are pushed to -inf; a row with fewer than
    ``k`` candidates is padded with index -1 and score -inf. Ties keep the
    lower item index first, so results are deterministic.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    if s.ndim == 1:
        s = s[None, :]
    s[~np.isfinite(s)] = -np.inf
    if exclude is not None and exclude.nnz:
        coo = exclude.tocoo()
        s[coo.row, coo.col] = -np.inf
    n_rows, n_cols = s.shape
    k_eff = min(k, n_cols)
    if k_eff <= 0:
        return np.full((n_rows, k), -1, dtype=np.int64), np.full((n_rows, k), -np.inf, dtype=np.float32)
    if k_eff < n_cols:
        part = np.argpartition(-s, k_eff - 1, axis=1)[:, :k_eff]
    else:
        part = np.tile(np.arange(n_cols), (n_rows, 1))
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    val = np.take_along_axis(part_scores, order, axis=1)
    idx[~np.isfinite(val)] = -1
    if k_eff < k:
        idx = np.pad(idx, ((0, 0), (0, k - k_eff)), constant_values=-1)
        val = np.pad(val, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return idx, val


MODEL_REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model loadable by its ``name``."""
    if cls.name in MODEL_REGISTRY and MODEL_REGISTRY[cls.name] is not cls:
        raise ValueError(f"two models are named {cls.name!r}")
    MODEL_REGISTRY[cls.name] = cls
    return cls


class Recommender(ABC):
    """A recommendation model.

    Subclasses set ``name``, take their hyperparameters as keyword arguments
    (stored in ``self.params`` so that ``save``/``load`` round-trip them) and
    implement ``_fit``, ``scores``, ``_state`` and ``_restore``; ``similar_items``
    has a default based on ``item_vectors``.
    """

    name: ClassVar[str]
    #: whether the model personalizes (False for popularity-like models)
    personalized: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.user_ids: np.ndarray[Any, Any] = np.asarray([], dtype=str)
        self.item_ids: np.ndarray[Any, Any] = np.asarray([], dtype=str)
        self.history_matrix: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self._item_index: dict[str, int] = {}
        self._user_index: dict[str, int] = {}

    # ----------------------------------------------------------------- fitting
    def fit(self, data: Interactions, items: ItemCatalog | None = None) -> Self:
        """Learn from ``data``; keeps the training matrix as the users' default histories."""
        self.user_ids = data.user_ids
        self.item_ids = data.item_ids
        self.history_matrix = data.matrix.astype(np.float32).tocsr()
        self._reindex()
        self._fit(data, None if items is None else items.aligned(data.item_ids))
        return self

    @abstractmethod
    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None: ...

    # ----------------------------------------------------------------- scoring
    @abstractmethod
    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Scores (rows x items) for a batch of histories.

        ``history`` is a CSR matrix with one row per request over this model's
        items; ``users`` gives the fitted user row of each request (-1 if the
        request is not a fitted user, e.g. a session); models that keep user
        factors may use it, all others score from ``history`` alone.
        """

    def score_history(self, items: IntArray, weights: FloatArray, user: int = -1) -> FloatArray:
        """One history's scores over every item (a served list): its ``items`` (columns) and their ``weights``.

        The same scores as :meth:`scores` on that one row; models with a path that needs no sparse matrix
        for a single row override it.
        """
        indptr = np.asarray([0, len(items)], dtype=np.int64)
        row = sp.csr_matrix((np.asarray(weights, dtype=np.float32), items, indptr), shape=(1, len(self.item_ids)))
        scores: FloatArray = np.asarray(self.scores(row, np.asarray([user])), dtype=np.float32)[0]
        return scores

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        histories: sp.csr_matrix | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top ``k`` (item id, score) per user, best first.

        ``histories`` overrides the fitted histories (rows aligned to
        ``user_ids``); unknown users without one get an empty history.
        """
        rows = np.asarray([self._user_index.get(u, -1) for u in user_ids], dtype=np.int64)
        hist = self.histories_for(rows) if histories is None else histories.tocsr()
        idx, val = top_k(self.scores(hist, rows), k, hist if exclude_seen else None)
        return [
            [(str(self.item_ids[i]), float(v)) for i, v in zip(r_idx, r_val, strict=True) if i >= 0]
            for r_idx, r_val in zip(idx, val, strict=True)
        ]

    def histories_for(self, rows: IntArray) -> sp.csr_matrix:
        """Fitted history rows; a row of -1 gives an empty history."""
        known = rows >= 0
        out = sp.lil_matrix((len(rows), len(self.item_ids)), dtype=np.float32)
        if known.any():
            sub = self.history_matrix[rows[known]]
            out[np.flatnonzero(known)] = sub
        return out.tocsr()

    def history_of(self, items: Mapping[str, float]) -> sp.csr_matrix:
        """One history row from item ids and weights; items the model does not know are ignored."""
        cols = [self._item_index[i] for i in items if i in self._item_index]
        vals = [float(items[i]) for i in items if i in self._item_index]
        return sp.csr_matrix(
            (
                np.asarray(vals, dtype=np.float32),
                (np.zeros(len(cols), dtype=np.int64), np.asarray(cols, dtype=np.int64)),
            ),
            shape=(1, len(self.item_ids)),
        )

    def item_vectors(self) -> np.ndarray[Any, Any] | sp.csr_matrix | None:
        """A vector per item (rows) whose cosine similarity defines ``similar_items``; None if there is none."""
        return None

    def reason_affinity(self) -> Affinity | None:
        """How strongly a history item leads to an item in this model's own scoring, for reasons; None if not defined.

        A reason names the anchor with the highest affinity; without one, serving uses the cosine of
        ``item_vectors``.
        """
        return None

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Items most like ``item_id`` (cosine of ``item_vectors``), best first, itself excluded."""
        if item_id not in self._item_index:
            return []
        vectors = self.item_vectors()
        if vectors is None:
            return []
        col = self._item_index[item_id]
        sims = _cosine_to(vectors, col)
        sims[col] = -np.inf
        idx, val = top_k(sims[None, :], k)
        return [(str(self.item_ids[i]), float(v)) for i, v in zip(idx[0], val[0], strict=True) if i >= 0]

    # -------------------------------------------------------------- persisting
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        """The fitted arrays (dense or scipy sparse) that ``_restore`` needs."""

    @abstractmethod
    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None: ...

    def save(self, path: str | Path) -> Path:
        """Write the model into the directory ``path`` (created); returns it."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray[Any, Any]] = {
            "_user_ids": self.user_ids.astype(str),
            "_item_ids": self.item_ids.astype(str),
        }
        sparse_keys = ["_history"]
        _put_sparse(arrays, "_history", self.history_matrix)
        for key, value in self._state().items():
            if sp.issparse(value):
                _put_sparse(arrays, key, value)
                sparse_keys.append(key)
            else:
                arrays[key] = np.asarray(value)
        np.savez(directory / "arrays.npz", **arrays)  # type: ignore[arg-type]
        header = {"format": FORMAT_VERSION, "model": self.name, "params": self.params, "sparse": sparse_keys}
        (directory / "model.json").write_text(json.dumps(header, sort_keys=True, indent=2), encoding="utf-8")
        return directory

    def _reindex(self) -> None:
        self._item_index = {v: k for k, v in enumerate(self.item_ids.tolist())}
        self._user_index = {u: k for k, u in enumerate(self.user_ids.tolist())}


def load_model(path: str | Path) -> Recommender:
    """Read a model written by :meth:`Recommender.save`."""
    directory = Path(path)
    header = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported model format {header.get('format')!r}")
    cls = MODEL_REGISTRY.get(header["model"])
    if cls is None:
        raise ValueError(f"unknown model {header['model']!r}")
    with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
        raw = {k: npz[k] for k in npz.files}
    state: dict[str, Any] = {}
    sparse_keys = set(header["sparse"])
    for key in sparse_keys:
        state[key] = _get_sparse(raw, key)
    for key, value in raw.items():
        if not any(key.startswith(f"{s}__") for s in sparse_keys):
            state[key] = value
    model = cls(**header["params"])
    model.user_ids = state.pop("_user_ids")
    model.item_ids = state.pop("_item_ids")
    model.history_matrix = state.pop("_history")
    model._reindex()
    model._restore(state)
    return model


def _put_sparse(arrays: dict[str, np.ndarray[Any, Any]], key: str, value: sp.spmatrix) -> None:
    m = sp.csr_matrix(value)
    arrays[f"{key}__data"] = m.data
    arrays[f"{key}__indices"] = m.indices
    arrays[f"{key}__indptr"] = m.indptr
    arrays[f"{key}__shape"] = np.asarray(m.shape, dtype=np.int64)


def _get_sparse(raw: dict[str, np.ndarray[Any, Any]], key: str) -> sp.csr_matrix:
    shape = tuple(int(x) for x in raw[f"{key}__shape"])
    return sp.csr_matrix((raw[f"{key}__data"], raw[f"{key}__indices"], raw[f"{key}__indptr"]), shape=shape)


def _cosine_to(vectors: np.ndarray[Any, Any] | sp.spmatrix, col: int) -> np.ndarray[Any, Any]:
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        dots = np.asarray((m @ m[col].T).todense()).ravel()
    else:
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1)
        dots = v @ v[col]
    denom = norms * norms[col]
    with np.errstate(divide="ignore", invalid="ignore"):
        sims = np.where(denom > 0, dots / denom, 0.0).astype(np.float32)
    return sims
