r"""A hybrid that fuses other registered models.

Components are given by name, each ``{"model": name, "params": {...},
"weight": w, "label": optional name for reasons}``; every distinct
(model, params) is fitted once on the same data. Per request row, fusion is

- ``linear``: :math:`\sum_c w_c\, \nu(s_c)`, with :math:`\nu` the row's
  min-max scaling to [0, 1] or its z-score (``normalize``); a constant row
  contributes 0;
- ``rrf``: reciprocal rank fusion (Cormack, Clarke & Buettcher 2009),
  :math:`\sum_c w_c / (k + r_c)` with :math:`r_c` the item's 1-based rank in
  component :math:`c` (ties share the best rank); only items scored above
  the row's minimum and ranked within ``rrf_depth`` count.

Requests whose history has fewer than ``cold_start_below`` distinct items use
the ``cold_components`` instead (by default content, which needs an item
catalog, and popularity). A component that cannot be fitted (a
``ValueError``: EASE refusing a large catalog, content without a catalog) is
left out with a warning unless ``strict``; the defaults also skip models
that are not registered. Scoring runs in row chunks, each a few matrix
operations per component.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import MODEL_REGISTRY, FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["DEFAULT_COLD_COMPONENTS", "DEFAULT_COMPONENTS", "Hybrid", "normalize_rows", "rank_rows"]

logger = logging.getLogger(__name__)

DEFAULT_COMPONENTS: list[dict[str, Any]] = [
    {"model": "buy_again", "params": {"log_weights": True}, "weight": 1.0},
    {"model": "ease", "params": {}, "weight": 0.3},
    {"model": "itemknn", "params": {"similarity": "bm25"}, "weight": 0.1},
    {"model": "assoc", "params": {}, "weight": 0.1},
    {"model": "popularity", "params": {}, "weight": 0.05},
]
DEFAULT_COLD_COMPONENTS: list[dict[str, Any]] = [
    {"model": "content", "params": {}, "weight": 1.0},
    {"model": "popularity", "params": {}, "weight": 0.5},
]
#: score cells per chunk of request rows (bounds the memory of a batch)
CHUNK_CELLS = 4_000_000

Fusion = Literal["linear", "rrf"]
Normalize = Literal["minmax", "zscore"]


def normalize_rows(scores: np.ndarray[Any, Any], how: str) -> FloatArray:
    """Each row scaled to [0, 1] (``minmax``) or to zero mean, unit deviation (``zscore``); constant rows give 0."""
    s = np.asarray(scores, dtype=np.float32)
    finite = np.isfinite(s)
    if how == "minmax":
        lo = np.where(finite, s, np.inf).min(axis=1, keepdims=True)
        hi = np.where(finite, s, -np.inf).max(axis=1, keepdims=True)
        span = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(finite & (span > 0), (s - lo) / span, 0.0)
    else:
        count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
        mean = np.where(finite, s, 0.0).sum(axis=1, keepdims=True) / count
        centred = np.where(finite, s - mean, 0.0)
        std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / count)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(std > 0, centred / std, 0.0)
    return np.asarray(out, dtype=np.float32)


def rank_rows(scores: np.ndarray[Any, Any]) -> tuple[IntArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """0-based rank of each item in its row, best first (ties share the best rank), and which items beat the minimum."""
    s = np.asarray(scores, dtype=np.float32)
    s = np.where(np.isfinite(s), s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    ranked = np.take_along_axis(s, order, axis=1)
    new = np.ones(ranked.shape, dtype=bool)
    new[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    first = np.maximum.accumulate(np.where(new, np.arange(s.shape[1])[None, :], 0), axis=1)
    ranks = np.empty(s.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, first, axis=1)
    return ranks, s > s.min(axis=1, keepdims=True)


def _spec(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str):
        raise ValueError(f"a component is a dict with a 'model' name, not {raw!r}")
    unknown = set(raw) - {"model", "params", "weight", "label"}
    if unknown:
        raise ValueError(f"unknown component keys {sorted(unknown)}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("a component's params must be a dict")
    weight = float(raw.get("weight", 1.0))
    return {"model": raw["model"], "params": params, "weight": weight, "label": str(raw.get("label") or raw["model"])}


@register
class Hybrid(Recommender):
    """Weighted fusion of registered models, with a cold-start switch.

    Parameters
    ----------
    components : list of dict or None
        ``{"model", "params", "weight", "label"}`` per component; None for :data:`DEFAULT_COMPONENTS`.
    fusion : "linear" or "rrf"
        Weighted sum of row-normalized scores, or reciprocal rank fusion.
    normalize : "minmax" or "zscore"
        The row normalization of ``linear`` fusion.
    rrf_k, rrf_depth : float, int
        RRF's rank offset and the ranks that count (0: all).
    cold_start_below : int
        Requests with fewer distinct history items use ``cold_components`` (0: never).
    cold_components : list of dict or None
        The cold-start components; None for :data:`DEFAULT_COLD_COMPONENTS`.
    strict : bool
        Raise instead of leaving out a component that cannot be fitted.

    """

    name: ClassVar[str] = "hybrid"

    def __init__(
        self,
        *,
        components: list[dict[str, Any]] | None = None,
        fusion: Fusion = "linear",
        normalize: Normalize = "minmax",
        rrf_k: float = 60.0,
        rrf_depth: int = 100,
        cold_start_below: int = 0,
        cold_components: list[dict[str, Any]] | None = None,
        strict: bool = False,
    ) -> None:
        if fusion not in ("linear", "rrf"):
            raise ValueError(f"fusion must be 'linear' or 'rrf', not {fusion!r}")
        if normalize not in ("minmax", "zscore"):
            raise ValueError(f"normalize must be 'minmax' or 'zscore', not {normalize!r}")
        if rrf_k < 0 or rrf_depth < 0 or cold_start_below < 0:
            raise ValueError("rrf_k, rrf_depth and cold_start_below must not be negative")
        for raw in [*(components or []), *(cold_components or [])]:
            _spec(raw)
        if components is not None and not components:
            raise ValueError("a hybrid needs at least one component")
        super().__init__(
            components=components,
            fusion=fusion,
            normalize=normalize,
            rrf_k=float(rrf_k),
            rrf_depth=int(rrf_depth),
            cold_start_below=int(cold_start_below),
            cold_components=cold_components,
            strict=bool(strict),
        )
        self._fits: list[Recommender | None] = []
        self._main: list[tuple[int, float, str]] = []
        self._cold: list[tuple[int, float, str]] = []

    # ----------------------------------------------------------------- set-up
    def _plan(self) -> tuple[list[dict[str, Any]], list[list[tuple[int, float, str]]]]:
        """The distinct (model, params) to fit and, per list (main, cold), (fit index, weight, label)."""
        lists = [("components", DEFAULT_COMPONENTS), ("cold_components", DEFAULT_COLD_COMPONENTS)]
        if self.params["cold_start_below"] == 0:
            lists = lists[:1]
        keys: dict[str, int] = {}
        fits: list[dict[str, Any]] = []
        plan: list[list[tuple[int, float, str]]] = []
        for param, default in lists:
            given = self.params[param]
            members = []
            for raw in default if given is None else given:
                spec = _spec(raw)
                if spec["model"] not in MODEL_REGISTRY:
                    if given is not None:
                        raise ValueError(f"unknown model {spec['model']!r} in the hybrid")
                    continue
                key = json.dumps({"model": spec["model"], "params": spec["params"]}, sort_keys=True)
                if key not in keys:
                    keys[key] = len(fits)
                    fits.append(spec)
                members.append((keys[key], spec["weight"], spec["label"]))
            plan.append(members)
        return fits, plan

    def _settle(self, plan: list[list[tuple[int, float, str]]]) -> None:
        alive = [[m for m in members if self._fits[m[0]] is not None] for members in plan]
        if not alive[0]:
            raise ValueError("no component of the hybrid could be fitted")
        self._main = alive[0]
        self._cold = alive[1] if len(alive) > 1 else []

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        specs, plan = self._plan()
        self._fits = []
        for spec in specs:
            model = MODEL_REGISTRY[spec["model"]](**spec["params"])
            try:
                self._fits.append(model.fit(data, items))
            except ValueError as error:
                if self.params["strict"]:
                    raise
                logger.warning("hybrid component left out", extra={"model": spec["model"], "reason": str(error)})
                self._fits.append(None)
        self._settle(plan)

    @property
    def active_components(self) -> list[dict[str, Any]]:
        """The fitted components in use: label, model, weight and whether for cold-start requests."""
        out = []
        for cold, members in ((False, self._main), (True, self._cold)):
            for j, weight, label in members:
                model = self._fits[j]
                assert model is not None
                out.append({"label": label, "model": model.name, "weight": weight, "cold": cold})
        return out

    # ----------------------------------------------------------------- scoring
    def _contributions(
        self, members: list[tuple[int, float, str]], history: sp.csr_matrix, users: IntArray
    ) -> Iterator[tuple[str, FloatArray]]:
        """Each component's weighted, normalized contribution to the fused scores."""
        for j, weight, label in members:
            model = self._fits[j]
            assert model is not None
            raw = model.scores(history, users)
            if self.params["fusion"] == "rrf":
                ranks, informative = rank_rows(raw)
                depth = self.params["rrf_depth"]
                counted = informative & (ranks < depth) if depth > 0 else informative
                part = np.where(counted, weight / (self.params["rrf_k"] + ranks + 1.0), 0.0)
            else:
                part = weight * normalize_rows(raw, self.params["normalize"])
            yield label, np.asarray(part, dtype=np.float32)

    def _cold_mask(self, history: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.bool_]]:
        h = sp.csr_matrix(history, copy=True)
        h.eliminate_zeros()
        if not self._cold:
            return np.zeros(h.shape[0], dtype=bool)
        return np.asarray(np.diff(h.indptr) < self.params["cold_start_below"])

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Fused scores of the components (cold-start components for short histories)."""
        h = sp.csr_matrix(history, dtype=np.float32)
        n_rows = h.shape[0]
        u = np.full(n_rows, -1, dtype=np.int64) if users is None else np.asarray(users, dtype=np.int64)
        out = np.zeros((n_rows, len(self.item_ids)), dtype=np.float32)
        cold = self._cold_mask(h)
        step = max(1, CHUNK_CELLS // max(len(self.item_ids), 1))
        for members, mask in ((self._main, ~cold), (self._cold, cold)):
            rows = np.flatnonzero(mask)
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                total = out[chunk]
                for _, part in self._contributions(members, h[chunk], u[chunk]):
                    total += part
                out[chunk] = total
        return out

    def explain(self, history_row: sp.csr_matrix, item_index: int, user: int = -1) -> tuple[str, float]:
        """The component (its label) that contributed most to ``item_index`` for this history, and its share."""
        h = sp.csr_matrix(history_row, dtype=np.float32)[:1]
        members = self._cold if self._cold_mask(h)[0] else self._main
        parts = [
            (label, float(part[0, item_index])) for label, part in self._contributions(members, h, np.asarray([user]))
        ]
        return max(parts, key=lambda p: p[1])

    def similar_items(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The similar items of the first main component that has any."""
        for j, _, _ in self._main:
            model = self._fits[j]
            found = model.similar_items(item_id, k) if model is not None else []
            if found:
                return found
        return []

    # -------------------------------------------------------------- persisting
    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        state: dict[str, np.ndarray[Any, Any] | sp.spmatrix] = {
            "fitted": np.asarray([m is not None for m in self._fits], dtype=bool)
        }
        for j, model in enumerate(self._fits):
            if model is None:
                continue
            for key, value in model._state().items():
                state[f"c{j}.{key}"] = value
            own = model.history_matrix
            if own.shape != self.history_matrix.shape or (own != self.history_matrix).nnz:
                state[f"c{j}._history"] = own
        return state

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        specs, plan = self._plan()
        fitted = np.asarray(state["fitted"], dtype=bool)
        if len(fitted) != len(specs):
            raise ValueError("the saved hybrid does not match its components")
        self._fits = []
        for j, spec in enumerate(specs):
            if not fitted[j]:
                self._fits.append(None)
                continue
            prefix = f"c{j}."
            model = MODEL_REGISTRY[spec["model"]](**spec["params"])
            model.user_ids = self.user_ids
            model.item_ids = self.item_ids
            model.history_matrix = state.get(f"{prefix}_history", self.history_matrix)
            model._reindex()
            model._restore(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and k != f"{prefix}_history"}
            )
            self._fits.append(model)
        self._settle(plan)
