r"""Candidates for serving a large catalogue: an inner-product index over factor models, and exact pre-filters.

:class:`CandidateIndex` finds the items with the highest score :math:`x \cdot y_i + b_i` for a user vector
:math:`x` without reading every item. Maximum inner product search becomes nearest-neighbour search in L2
(Bachrach et al. 2014, "Speeding up the Xbox recommender system using a Euclidean transformation"): the item
vector :math:`z_i = [y_i, b_i, \sqrt{M^2 - \lVert y_i \rVert^2 - b_i^2}]` (:math:`M` the largest such norm;
no bias column when the model has none) and the query :math:`q = [x, 1, 0]` give
:math:`\lVert q - z_i \rVert^2 = \lVert x \rVert^2 + 1 + M^2 - 2 (x \cdot y_i + b_i)`, so the nearest items
are the best scored. A faiss inverted file (``IndexIVFFlat``: k-means cells, exact distances inside the
probed cells) searches the cells nearest the query. ``nprobe`` is calibrated when the index is built: the
smallest number of cells that finds at least :data:`CALIBRATION_RECALL` of the exact top 10 of a sample of
the fitted users. The index is written in faiss's own format (``write_index``, not a pickle) beside a JSON
header that ties it to the factors it was built from.

:class:`Prefilter` gives the exact candidates of restrictive requests (a whitelist, a few categories, a
narrow price range): scoring those few items exactly is cheaper than any index and never misses.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from patron.recs.base import FloatArray, IntArray
from patron.recs.rules import ItemFacts, RuleSet

__all__ = [
    "CALIBRATION_RECALL",
    "INDEX_FILE",
    "INDEX_MIN_ITEMS",
    "CandidateIndex",
    "Prefilter",
]

#: catalogues from this size are served through the index; below it every item is scored
INDEX_MIN_ITEMS = 20_000
#: recall@10 on the fitted users that the calibrated ``nprobe`` reaches
CALIBRATION_RECALL = 0.99
INDEX_FILE = "candidates.faiss"
HEADER_FILE = "candidates.json"
_FORMAT = 1
#: cells of the inverted file per square root of the number of items
CELLS_PER_ROOT = 4.0
_SAMPLE_USERS = 500
_SEED = 1234


def _faiss() -> Any:
    """faiss, imported on first use (it is slow to import) and held to one thread: requests run side by side."""
    import faiss  # type: ignore[import-not-found,unused-ignore]

    faiss.omp_set_num_threads(1)
    return faiss


def _fingerprint(item_factors: FloatArray, item_bias: FloatArray | None) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(item_factors, dtype=np.float32).tobytes())
    if item_bias is not None:
        digest.update(np.ascontiguousarray(item_bias, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _lifted(item_factors: FloatArray, item_bias: FloatArray | None) -> FloatArray:
    """Item vectors lifted to L2 (the module docstring's :math:`z_i`)."""
    y = np.asarray(item_factors, dtype=np.float64)
    if item_bias is not None:
        y = np.hstack([y, np.asarray(item_bias, dtype=np.float64)[:, None]])
    norms = (y**2).sum(axis=1)
    extra = np.sqrt(np.maximum(norms.max(initial=0.0) - norms, 0.0))
    return np.ascontiguousarray(np.hstack([y, extra[:, None]]), dtype=np.float32)


@dataclass(frozen=True)
class IndexHeader:
    """What the stored index was built from and how it searches."""

    items: int
    factors: int
    bias: bool
    cells: int
    nprobe: int
    recall: float | None
    fingerprint: str


class CandidateIndex:
    """Approximate top items by inner product with a user vector (see the module docstring); thread-safe."""

    def __init__(self, index: Any, header: IndexHeader) -> None:
        self.index = index
        self.header = header
        self._searches: dict[int, Any] = {}  # nprobe -> faiss search parameters (read-only, shared by threads)

    @classmethod
    def build(
        cls,
        item_factors: FloatArray,
        item_bias: FloatArray | None = None,
        users: FloatArray | None = None,
        *,
        cells: int | None = None,
    ) -> CandidateIndex:
        r"""Index the items; ``nprobe`` is calibrated on a sample of ``users`` (fitted user vectors), if given.

        ``cells`` defaults to about :math:`4\sqrt{n}` (at least 39 items each, faiss's minimum for k-means).
        """
        faiss = _faiss()
        bias = item_bias if item_bias is not None and np.any(item_bias) else None
        z = _lifted(item_factors, bias)
        n, d = z.shape
        cells = max(1, min(cells or int(CELLS_PER_ROOT * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, cells)
        index.cp.seed = _SEED
        index.train(z)
        index.add(z)
        header = IndexHeader(
            items=n,
            factors=int(np.asarray(item_factors).shape[1]),
            bias=bias is not None,
            cells=cells,
            nprobe=max(1, cells // 8),
            recall=None,
            fingerprint=_fingerprint(item_factors, bias),
        )
        built = cls(index, header)
        if users is not None and len(users):
            built._calibrate(np.asarray(item_factors, dtype=np.float32), bias, np.asarray(users, dtype=np.float32))
        return built

    def _calibrate(self, item_factors: FloatArray, bias: FloatArray | None, users: FloatArray) -> None:
        """Set ``nprobe`` to the fewest cells reaching :data:`CALIBRATION_RECALL` recall@10 on sampled users."""
        rng = np.random.default_rng(_SEED)
        live = np.flatnonzero(np.linalg.norm(users, axis=1) > 0)
        sample = users[rng.choice(live, size=min(_SAMPLE_USERS, len(live)), replace=False)]
        if not len(sample):
            return
        scores = sample @ item_factors.T + (0.0 if bias is None else bias[None, :])
        k = min(10, scores.shape[1])
        exact = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        queries = self._queries(sample)
        nprobe, recall = self.header.cells, 1.0
        for probe in sorted({max(1, round(self.header.cells * 2 ** (-s / 2))) for s in range(15)}):
            _, found = self.index.search(queries, k, params=self._params(probe))
            hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
            recall = hits / exact.size
            if recall >= CALIBRATION_RECALL:
                nprobe = probe
                break
        self.header = IndexHeader(**{**self.header.__dict__, "nprobe": nprobe, "recall": round(recall, 4)})

    def _queries(self, vectors: FloatArray) -> FloatArray:
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        extra = [np.ones((len(v), 1), dtype=np.float32)] if self.header.bias else []
        return np.ascontiguousarray(np.hstack([v, *extra, np.zeros((len(v), 1), dtype=np.float32)]))

    def _params(self, nprobe: int) -> Any:
        nprobe = min(nprobe, self.header.cells)
        params = self._searches.get(nprobe)
        if params is None:
            params = self._searches[nprobe] = _faiss().SearchParametersIVF(nprobe=nprobe)
        return params

    def search(self, vector: FloatArray, n: int, *, widen: int = 1) -> IntArray:
        """Up to ``n`` item indices, nearest first; ``widen`` multiplies the cells probed."""
        _, found = self.index.search(self._queries(vector), n, params=self._params(self.header.nprobe * widen))
        row = found[0]
        return np.asarray(row[row >= 0], dtype=np.int64)

    # ------------------------------------------------------------------ files
    def save(self, directory: Path) -> None:
        """Write the index (faiss's format) and its header into ``directory``."""
        _faiss().write_index(self.index, str(directory / INDEX_FILE))
        header = {"format": _FORMAT, **self.header.__dict__}
        (directory / HEADER_FILE).write_text(json.dumps(header, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, item_factors: FloatArray, item_bias: FloatArray | None) -> CandidateIndex | None:
        """The index stored in ``directory`` if it was built from these factors, else None."""
        if not (directory / INDEX_FILE).is_file() or not (directory / HEADER_FILE).is_file():
            return None
        raw = json.loads((directory / HEADER_FILE).read_text(encoding="utf-8"))
        if raw.pop("format", None) != _FORMAT:
            return None
        header = IndexHeader(**raw)
        bias = item_bias if item_bias is not None and np.any(item_bias) else None
        if header.bias != (bias is not None) or header.fingerprint != _fingerprint(item_factors, bias):
            return None
        return cls(_faiss().read_index(str(directory / INDEX_FILE)), header)


class Prefilter:
    """Exact candidates of a request that allows few items: its whitelist, its categories or its price range."""

    def __init__(self, facts: ItemFacts, limit: int) -> None:
        self.limit = limit
        self.by_category = np.argsort(facts.category, kind="stable")
        self.category_counts = np.bincount(facts.category, minlength=len(facts.categories))
        self.category_starts = np.concatenate([[0], np.cumsum(self.category_counts)])
        self.by_price = np.argsort(facts.price, kind="stable")  # NaN (no price) last
        self.sorted_price = facts.price[self.by_price]
        self.priced = int(np.isfinite(facts.price).sum())

    def candidates(self, rules: RuleSet) -> IntArray | None:
        """The smallest exact superset of the allowed items, when one has at most ``limit`` items; else None."""
        if rules.whitelist is not None:
            return rules.whitelist
        best: IntArray | None = None
        if rules.category_ok is not None:
            codes = np.flatnonzero(rules.category_ok)
            if int(self.category_counts[codes].sum()) <= self.limit:
                starts, ends = self.category_starts[codes], self.category_starts[codes + 1]
                parts = [self.by_category[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
                best = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if rules.price_min is not None or rules.price_max is not None:
            lo = 0 if rules.price_min is None else int(np.searchsorted(self.sorted_price, rules.price_min, "left"))
            hi = self.priced
            if rules.price_max is not None:
                hi = min(hi, int(np.searchsorted(self.sorted_price, rules.price_max, "right")))
            if max(hi - lo, 0) <= min(self.limit, len(best) if best is not None else self.limit):
                best = self.by_price[lo : max(hi, lo)]
        return None if best is None else np.asarray(best, dtype=np.int64)
