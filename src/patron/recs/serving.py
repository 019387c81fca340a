"""In-process serving of one trained version: lists with rules, reasons, fallbacks and live feedback.

:meth:`RecEngine.open` loads everything once (model, item facts, purchases,
repeat-purchase categories, segment trending lists, ranked once); a list then
costs one call of :meth:`Recommender.scores` on the member's history, a top-k
over a threshold-sampled candidate set, the rules on those candidates only, and
optionally MMR. A factor model over a large catalogue (at least
:data:`~patron.recs.candidates.INDEX_MIN_ITEMS` items) scores only candidates
instead: the exact few items a restrictive request allows, else those of its
:class:`~patron.recs.candidates.CandidateIndex`, widened once and then
replaced by every item when too few pass the rules, so a page is never shorter
than exact scoring would fill it. A member's history is the model's training
row plus a *live overlay* that :meth:`RecEngine.with_feedback` updates, so new
feedback changes the next list at once, without a retrain (the model folds the
new history in).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp  # type: ignore[import-untyped]
from pydantic import BaseModel

from patron.errors import NotFoundError, ValidationError
from patron.recs import models as _models  # noqa: F401 - registers every model for load_model
from patron.recs.base import IntArray, Recommender, load_model
from patron.recs.candidates import INDEX_MIN_ITEMS, CandidateIndex, Prefilter
from patron.recs.interactions import InteractionConfig
from patron.recs.models.mf import FactorModel
from patron.recs.rules import (
    ItemFacts,
    ReasonCode,
    RecRequest,
    RuleSet,
    apply_rules,
    compile_rules,
    cosine_affinity,
    explain,
    mmr,
    normalized_vectors,
    within,
)

__all__ = ["RecEngine", "RecItem", "RecList", "Source", "read_member_matrix", "write_member_matrix"]

Source = Literal["personalized", "trending_in_segment", "trending", "similar", "bought_together", "session"]
_ALL = ""  # the trending list over all members
_DEFAULT = RecRequest()
# A reason names one of the member's strongest items (largest interaction weight, so the most recent and
# most engaged after time decay): at most this many bought and this many viewed items are compared with a
# page, which bounds the cost of reasons for members with long histories.
REASON_ANCHORS = 50


class RecItem(BaseModel):
    """One recommended item, its score and why it is there."""

    item_id: str
    score: float
    reason: ReasonCode
    reason_args: dict[str, str]


class RecList(BaseModel):
    """A page of recommendations and where they came from."""

    items: list[RecItem]
    source: Source
    page: int
    k: int
    has_more: bool


def write_member_matrix(path: Path, member_ids: np.ndarray[Any, Any], matrix: sp.csr_matrix) -> None:
    """Save a members x items sparse matrix with its member ids (NumPy ``.npz``, no pickle)."""
    m = sp.csr_matrix(matrix, dtype=np.float32)
    np.savez(
        path,
        members=np.asarray(member_ids).astype(str),
        data=m.data,
        indices=m.indices,
        indptr=m.indptr,
        shape=np.asarray(m.shape, dtype=np.int64),
    )


def read_member_matrix(path: Path) -> tuple[np.ndarray[Any, Any], sp.csr_matrix]:
    """Read what :func:`write_member_matrix` wrote: member ids and the matrix."""
    with np.load(path, allow_pickle=False) as npz:
        shape = tuple(int(x) for x in npz["shape"])
        matrix = sp.csr_matrix((npz["data"], npz["indices"], npz["indptr"]), shape=shape)
        return npz["members"], matrix


def _top(scores: np.ndarray[Any, Any], m: int) -> IntArray:
    """Indices of the ``m`` highest finite scores, best first (ties: lower index first).

    A strided sample gives a threshold that about ``2m`` scores pass; when at least ``m`` do,
    they contain the exact top ``m``, so only they are partitioned (a full partition otherwise).
    """
    n = len(scores)
    if n > 16 * m and n > 4096:
        sample = scores[::16]
        rank = min(len(sample) - 1, 2 * m // 16 + 1)
        threshold = np.partition(sample, len(sample) - 1 - rank)[len(sample) - 1 - rank]
        pool = np.flatnonzero(scores >= threshold) if np.isfinite(threshold) else np.zeros(0, dtype=np.int64)
        if len(pool) < m:
            pool = np.arange(n)
    else:
        pool = np.arange(n)
    values = scores[pool]
    if len(pool) > m:
        part = np.argpartition(-values, m - 1)[:m]
        pool, values = pool[part], values[part]
    keep = np.isfinite(values)
    pool, values = pool[keep], values[keep]
    return np.asarray(pool[np.lexsort((pool, -values))], dtype=np.int64)


def _strongest(items: IntArray, cols: IntArray, weights: np.ndarray[Any, Any]) -> IntArray:
    """At most ``REASON_ANCHORS`` of ``items`` (sorted): those weighing most in the history.

    ``cols`` is the history's items (sorted) and ``weights`` their weights; an item missing from it weighs 0.
    Ties go to the lower index.
    """
    if len(items) <= REASON_ANCHORS:
        return items
    at = np.minimum(np.searchsorted(cols, items), max(len(cols) - 1, 0))
    weight = np.where(cols[at] == items, weights[at], 0.0) if len(cols) else np.zeros(len(items))
    keep = np.lexsort((items, -np.asarray(weight, dtype=np.float64)))[:REASON_ANCHORS]
    return np.sort(items[keep])


class RecEngine:
    """One trained version, ready to serve; thread-safe."""

    def __init__(self, version_dir: Path, model: Recommender, facts: ItemFacts) -> None:
        self.version_dir = version_dir
        self.model = model
        self.facts = facts
        self.item_index = {v: k for k, v in enumerate(model.item_ids.tolist())}
        self.user_index = {u: k for k, u in enumerate(model.user_ids.tolist())}
        self.config = InteractionConfig()
        self.repeat = np.zeros(len(facts.categories), dtype=bool)
        self.segments: dict[str, str] = {}
        self.trending: dict[str, np.ndarray[Any, Any]] = {_ALL: np.zeros(len(facts.item_ids), dtype=np.float32)}
        # per trending list: items best first (ties by index, the order _select finds) and their scores
        self._ranked: dict[str, tuple[IntArray, np.ndarray[Any, Any]]] = {
            _ALL: (np.arange(len(facts.item_ids), dtype=np.int64), self.trending[_ALL])
        }
        self.index: CandidateIndex | None = None
        self._prefilter: Prefilter | None = None
        self.purchases = sp.csr_matrix((0, len(facts.item_ids)), dtype=np.float32)
        self.purchase_rows: dict[str, int] = {}
        vectors = model.item_vectors()
        self.vectors = normalized_vectors(vectors if vectors is not None else model.history_matrix.T.tocsr())
        self.affinity = model.reason_affinity() or cosine_affinity(self.vectors)
        self._purchases_by_item = self.purchases.tocsc()
        self._overlay: dict[str, dict[int, float]] = {}
        self._bought_live: dict[str, set[int]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading
    @classmethod
    def open(cls, version_dir: str | Path, *, index_min_items: int | None = INDEX_MIN_ITEMS) -> RecEngine:
        """Load a version written by :func:`patron.recs.training.train_version`.

        A factor model over at least ``index_min_items`` items (None: never) serves through its candidate
        index: the one stored in the version, else one built now (a few seconds per 100,000 items).
        """
        root = Path(version_dir)
        if not (root / "manifest.json").is_file():
            raise NotFoundError(f"no recommendation version at {root.name}")
        model = load_model(root / "model")
        facts = ItemFacts.from_arrow(pq.read_table(root / "items.parquet"))
        if facts.item_ids.tolist() != model.item_ids.tolist():
            raise ValidationError("the item facts do not match the model's items", field="items")
        engine = cls(root, model, facts)
        engine.config = InteractionConfig.model_validate_json((root / "interactions.json").read_text())
        repeat = json.loads((root / "repeat_categories.json").read_text())["categories"]
        engine.repeat[facts.category_codes(list(repeat))] = True
        members = pq.read_table(root / "members.parquet")
        engine.segments = dict(
            zip(members.column("member_key").to_pylist(), members.column("segment").to_pylist(), strict=True)
        )
        engine._load_trending(pq.read_table(root / "trending.parquet"))
        purchase_members, engine.purchases = read_member_matrix(root / "purchases.npz")
        engine.purchases.sum_duplicates()  # canonical: each row's items sorted and distinct
        engine.purchase_rows = {m: k for k, m in enumerate(purchase_members.tolist())}
        engine._purchases_by_item = engine.purchases.tocsc()
        engine._attach_index(index_min_items)
        return engine

    def _attach_index(self, min_items: int | None) -> None:
        model = self.model
        if min_items is None or not isinstance(model, FactorModel) or len(self.facts.item_ids) < min_items:
            return
        index = CandidateIndex.load(self.version_dir, model.item_factors, model.item_bias)
        if index is None:  # a version trained before indexes, or below the threshold at training time
            index = CandidateIndex.build(model.item_factors, model.item_bias, model.user_factors)
        self.index = index
        self._prefilter = Prefilter(self.facts, max(len(self.facts.item_ids) // 8, 1))

    def _load_trending(self, table: Any) -> None:
        segment = np.asarray(table.column("segment").to_pylist(), dtype=object)
        items = np.asarray([self.item_index.get(i, -1) for i in table.column("item_id").to_pylist()], dtype=np.int64)
        score = table.column("score").to_numpy().astype(np.float32)
        for name in set(segment.tolist()):
            row = np.zeros(len(self.facts.item_ids), dtype=np.float32)
            take = (segment == name) & (items >= 0)
            row[items[take]] = score[take]
            self.trending[str(name)] = row
            order = np.lexsort((np.arange(len(row)), -row)).astype(np.int64)
            self._ranked[str(name)] = (order, row[order])

    # ------------------------------------------------------------------ feedback
    def with_feedback(self, member_key: str, item_id: str, event_type: str, weight: float | None = None) -> float:
        """Add one signal to the member's live history; returns the item's new history weight.

        The weight defaults to the version's interaction weight of ``event_type``
        (``returned`` is minus a purchase). A purchase also counts as bought for
        the exclusion rule. The next :meth:`for_member` scores the new history.
        """
        col = self.item_index.get(item_id)
        if col is None:
            raise NotFoundError(f"unknown item {item_id!r}")
        w = self.config.weight(event_type) if weight is None else float(weight)
        if not np.isfinite(w):
            raise ValidationError("weight must be finite", field="weight")
        with self._lock:
            overlay = self._overlay.setdefault(member_key, {})
            overlay[col] = overlay.get(col, 0.0) + w
            if event_type == "purchase":
                self._bought_live.setdefault(member_key, set()).add(col)
            base = self._base_row(member_key)
            return float(base.get(col, 0.0) + overlay[col])

    def set_availability(
        self, item_id: str, *, hidden: bool | None = None, published: bool | None = None, in_stock: bool | None = None
    ) -> None:
        """Change an item's flags at once (an operator hides it, stock runs out); lists in flight are unaffected."""
        col = self._require(item_id)
        changes: dict[str, Any] = {}
        for name, value in (("hidden", hidden), ("published", published), ("in_stock", in_stock)):
            if value is not None:
                flags = getattr(self.facts, name).copy()
                flags[col] = value
                changes[name] = flags
        with self._lock:
            self.facts = dataclasses.replace(self.facts, **changes)  # copy on write: readers keep a whole snapshot

    def _base_row(self, member_key: str) -> dict[int, float]:
        row = self.user_index.get(member_key)
        if row is None:
            return {}
        m = self.model.history_matrix
        start, end = m.indptr[row], m.indptr[row + 1]
        return dict(zip(m.indices[start:end].tolist(), m.data[start:end].tolist(), strict=True))

    def history(self, member_key: str, extra_history: Mapping[str, float] | None = None) -> tuple[sp.csr_matrix, bool]:
        """The member's history row (training row + live overlay + ``extra_history``), and whether it changed."""
        cols, weights, changed = self._history(member_key, extra_history)
        return self._row(cols, weights), changed

    def _row(self, cols: IntArray, weights: np.ndarray[Any, Any]) -> sp.csr_matrix:
        indptr = np.asarray([0, len(cols)], dtype=np.int64)
        return sp.csr_matrix((weights, cols, indptr), shape=(1, len(self.facts.item_ids)))

    def _history(
        self, member_key: str, extra_history: Mapping[str, float] | None
    ) -> tuple[IntArray, np.ndarray[Any, Any], bool]:
        """The history's items (sorted) and weights, and whether it differs from the training row."""
        row = self.user_index.get(member_key)
        with self._lock:
            overlay = dict(self._overlay.get(member_key, {}))
        if not overlay and not extra_history and row is not None:
            m = self.model.history_matrix
            start, end = m.indptr[row], m.indptr[row + 1]
            return m.indices[start:end].astype(np.int64), m.data[start:end], False
        merged = self._base_row(member_key)
        for col, w in overlay.items():
            merged[col] = merged.get(col, 0.0) + w
        for item, w in (extra_history or {}).items():
            if item in self.item_index:
                merged[self.item_index[item]] = merged.get(self.item_index[item], 0.0) + float(w)
        cols = np.asarray(sorted(c for c, w in merged.items() if w > 0), dtype=np.int64)
        return cols, np.asarray([merged[c] for c in cols.tolist()], dtype=np.float32), True

    def purchased(self, member_key: str) -> IntArray:
        """Items the member bought (training purchases and live ones)."""
        row = self.purchase_rows.get(member_key)
        bought = (
            self.purchases.indices[self.purchases.indptr[row] : self.purchases.indptr[row + 1]]
            if row is not None
            else np.zeros(0, dtype=np.int64)
        )
        with self._lock:
            live = self._bought_live.get(member_key)
            if not live:  # a row of the canonical matrix: sorted and distinct already
                return bought.astype(np.int64)
            extra = np.fromiter(live, dtype=np.int64)
        return np.unique(np.concatenate([bought.astype(np.int64), extra]))

    # ------------------------------------------------------------------ lists
    def for_member(
        self,
        member_key: str,
        request: RecRequest | None = None,
        extra_history: Mapping[str, float] | None = None,
        segment: str | None = None,
    ) -> RecList:
        """A member's page: personalized from their history, else trending in their segment, else trending."""
        request = request or _DEFAULT
        cols, weights, changed = self._history(member_key, extra_history)
        bought = self.purchased(member_key)
        rules = compile_rules(self.facts, request, self.item_index, purchased=bought, repeat=self.repeat)
        if len(cols) and self.model.personalized:
            user = -1 if changed else self.user_index.get(member_key, -1)
            chosen, values, more = self._personalized(cols, weights, user, rules, request)
            seen = ~within(cols, bought)  # both sorted and distinct: what np.setdiff1d gives, cheaper
            reasons = explain(
                chosen,
                self.facts,
                self.affinity,
                bought=_strongest(bought, cols, weights),
                viewed=_strongest(cols[seen], cols[seen], weights[seen]),
            )
            return self._page(chosen, values, reasons, "personalized", request, more)
        segment = segment or self.segments.get(member_key)
        return self._trending(rules, request, segment)

    def _personalized(
        self, cols: IntArray, weights: np.ndarray[Any, Any], user: int, rules: RuleSet, request: RecRequest
    ) -> tuple[IntArray, np.ndarray[Any, Any], bool]:
        """The page of a history: every item scored, or (with a candidate index) only candidates."""
        model = self.model
        if self.index is None or self._prefilter is None or not isinstance(model, FactorModel):
            scores = model.score_history(cols, weights, user)
            return self._select(scores, rules, request)
        vector = model.user_vector(user, cols, weights)
        exact = self._prefilter.candidates(rules)
        if exact is not None:  # a restrictive request: its few allowed items, scored exactly
            return self._select(model.item_scores(vector, exact), rules, request, items=exact)
        need = request.k * request.page + 1
        size = max(4 * need, 128) if request.diversity is None else max(8 * need, 256)
        for count, widen in ((size, 1), (8 * size, 2)):
            if count > self._prefilter.limit:  # deep pages: scoring every item is cheaper
                break
            found = self.index.search(vector, count, widen=widen)
            chosen, values, more = self._select(model.item_scores(vector, found), rules, request, items=found)
            if more:  # at least a page and one more passed the rules
                return chosen, values, more
            passed = int(apply_rules(self.facts, rules, found).sum())
            if passed * 8 < need:  # widening would not fill the page either
                break
        return self._select(model.item_scores(vector), rules, request)

    def _trending(self, rules: RuleSet, request: RecRequest, segment: str | None) -> RecList:
        name = segment if segment and segment in self.trending else _ALL
        if rules.whitelist is not None:  # only the listed items are scored
            chosen, values, more = self._select(self.trending[name], rules, request)
        else:
            order, ranked = self._ranked[name]
            chosen, values, more = self._select(ranked, rules, request, items=order, ranked=True)
        if name != _ALL:
            why: tuple[ReasonCode, dict[str, str]] = ("popular_in_segment", {"segment": name})
            return self._page(chosen, values, [why] * len(chosen), "trending_in_segment", request, more)
        return self._page(chosen, values, [("trending", {})] * len(chosen), "trending", request, more)

    def for_session(self, item_ids: list[str], request: RecRequest | None = None) -> RecList:
        """An anonymous session's page from the items it viewed (most recent last); trending if none is known."""
        request = request or RecRequest()
        cols = np.unique(np.asarray([self.item_index[i] for i in item_ids if i in self.item_index], dtype=np.int64))
        rules = compile_rules(self.facts, request, self.item_index, also_block=cols)
        if len(cols) == 0 or not self.model.personalized:
            return self._trending(rules, request, None)
        chosen, values, more = self._personalized(cols, np.ones(len(cols), dtype=np.float32), -1, rules, request)
        reasons = explain(chosen, self.facts, self.affinity, bought=np.zeros(0, dtype=np.int64), viewed=cols)
        return self._page(chosen, values, reasons, "session", request, more)

    def similar(self, item_id: str, request: RecRequest | None = None) -> RecList:
        """Items most like ``item_id``: cosine of the model's item vectors (co-occurrence if it has none)."""
        request = request or RecRequest()
        col = self._require(item_id)
        sims = self.vectors @ self.vectors[col].T
        scores = np.asarray(sims.todense() if sp.issparse(sims) else sims, dtype=np.float32).ravel()
        scores[scores <= 0] = -np.inf
        rules = compile_rules(self.facts, request, self.item_index, also_block=np.asarray([col]))
        chosen, values, more = self._select(scores, rules, request)
        why: tuple[ReasonCode, dict[str, str]] = ("similar_to", self._args(col))
        return self._page(chosen, values, [why] * len(chosen), "similar", request, more)

    def bought_together(self, item_id: str, request: RecRequest | None = None) -> RecList:
        """Items bought with ``item_id``.

        An association-rules model's rules ranked by lift; else (or when it has
        none for the item) the cosine of the sets of members who bought each product.
        """
        request = request or RecRequest()
        col = self._require(item_id)
        by_item = self._purchases_by_item
        buyers = by_item.indices[by_item.indptr[col] : by_item.indptr[col + 1]]
        scores = np.full(len(self.facts.item_ids), -np.inf, dtype=np.float32)
        rules_for = getattr(self.model, "rules_for", None)
        rules = rules_for(item_id, max(500, 4 * request.k * request.page), "lift") if callable(rules_for) else []
        for rule in rules:  # an association-rules model: its rules, ranked by lift
            scores[self.item_index[rule["item"]]] = float(rule["lift"])
        if not rules and len(buyers):
            both = np.asarray((self.purchases[buyers] > 0).sum(axis=0), dtype=np.float64).ravel()
            counts = np.diff(by_item.indptr).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                cosine = both / np.sqrt(counts * len(buyers))
            scores = np.where(both > 0, cosine, -np.inf).astype(np.float32)
        allowed = compile_rules(self.facts, request, self.item_index, also_block=np.asarray([col]))
        chosen, values, more = self._select(scores, allowed, request)
        why: tuple[ReasonCode, dict[str, str]] = ("bought_together", self._args(col))
        return self._page(chosen, values, [why] * len(chosen), "bought_together", request, more)

    # ------------------------------------------------------------------ internals
    def _require(self, item_id: str) -> int:
        col = self.item_index.get(item_id)
        if col is None:
            raise NotFoundError(f"unknown item {item_id!r}")
        return col

    def _args(self, col: int) -> dict[str, str]:
        return {"item_id": str(self.facts.item_ids[col]), "title": str(self.facts.titles[col] or "")}

    def _select(
        self,
        scores: np.ndarray[Any, Any],
        rules: RuleSet,
        request: RecRequest,
        items: IntArray | None = None,
        *,
        ranked: bool = False,
    ) -> tuple[IntArray, np.ndarray[Any, Any], bool]:
        """The page's items and scores, and whether another page exists.

        ``scores`` are of ``items`` (every item if None); ``ranked``: they are sorted already, best first.
        """
        if not ranked:
            scores = np.where(np.isfinite(scores), scores, np.float32(-np.inf))  # NaN would sort as the largest
        if items is None and rules.whitelist is not None:
            items, scores = rules.whitelist, scores[rules.whitelist]

        def ids(positions: IntArray) -> IntArray:
            return positions if items is None else items[positions]

        need = request.k * request.page + 1
        pool_size = max(4 * need, 64) if request.diversity is None else max(8 * need, 200)
        while True:  # the best pool_size first, widened until enough of them pass the rules
            size = min(pool_size, len(scores))
            top = np.arange(size, dtype=np.int64) if ranked else _top(scores, size)
            pool = top[apply_rules(self.facts, rules, ids(top))]
            if len(pool) >= need or len(top) < size or size >= len(scores):
                break
            pool_size *= 4
        if request.diversity is not None and len(pool):
            picked = mmr(ids(pool), scores[pool], need, request.diversity, vectors=self.vectors)
            position = {item: p for item, p in zip(ids(pool).tolist(), pool.tolist(), strict=True)}
            pool = np.asarray([position[i] for i in picked.tolist()], dtype=np.int64)
        start = request.k * (request.page - 1)
        page = pool[start : start + request.k]
        return ids(page), scores[page], len(pool) > start + request.k

    def _page(
        self,
        chosen: IntArray,
        values: np.ndarray[Any, Any],
        reasons: list[tuple[ReasonCode, dict[str, str]]],
        source: Source,
        request: RecRequest,
        more: bool,
    ) -> RecList:
        items = [
            {"item_id": i, "score": v, "reason": r[0], "reason_args": r[1]}
            for i, v, r in zip(self.facts.item_ids[chosen].tolist(), values.tolist(), reasons, strict=True)
        ]
        # one validation of plain data in pydantic's core: faster than building each item in Python
        page = {"items": items, "source": source, "page": request.page, "k": request.k, "has_more": more}
        return RecList.model_validate(page)
