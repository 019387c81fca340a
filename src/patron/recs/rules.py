"""Serving rules: what may be shown, in which order, and why. Pure NumPy, no I/O.

A request's rules are compiled once (:func:`compile_rules`) and then checked on
a handful of candidate items (:func:`apply_rules`), so a rule costs a few
microseconds whatever the catalog size. Items are excluded when they are
unpublished, hidden or out of stock, outside the requested categories or price
range, on the request's exclude list, outside its whitelist, or already bought
by the member, unless their category is a *repeat-purchase* category
(:func:`learn_repeat_categories`). :func:`mmr` re-ranks for diversity and
:func:`explain` gives every returned item a reason code with arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import scipy.sparse as sp  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.recs.base import Affinity, IntArray, ItemCatalog, csr_rows

__all__ = [
    "REASONS",
    "ItemFacts",
    "ReasonCode",
    "RecRequest",
    "RuleSet",
    "apply_rules",
    "compile_rules",
    "cosine_affinity",
    "explain",
    "learn_repeat_categories",
    "mmr",
    "normalized_vectors",
    "repeat_purchase_shares",
    "within",
]

ReasonCode = Literal[
    "because_you_bought",
    "because_you_viewed",
    "popular_in_segment",
    "trending",
    "similar_to",
    "bought_together",
    "for_you",
]
REASONS: tuple[str, ...] = ReasonCode.__args__  # type: ignore[attr-defined]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class ItemFacts:
    """Per item (aligned to ``item_ids``): category code into ``categories``, price, and availability flags.

    An item without a category has the category ``""``; unknown prices are NaN
    (they pass no price filter). ``servable`` = published, not hidden, in stock.
    """

    item_ids: np.ndarray[Any, np.dtype[np.str_]]
    titles: np.ndarray[Any, Any]
    categories: np.ndarray[Any, np.dtype[np.str_]]
    category: IntArray
    price: np.ndarray[Any, np.dtype[np.float64]]
    published: BoolArray
    hidden: BoolArray
    in_stock: BoolArray

    @classmethod
    def from_catalog(
        cls,
        catalog: ItemCatalog,
        *,
        in_stock: BoolArray | None = None,
        published: BoolArray | None = None,
        hidden: BoolArray | None = None,
    ) -> ItemFacts:
        """Facts from a catalog; flags default to published, visible and in stock."""
        n = len(catalog.item_ids)
        names = np.asarray([str(c or "") for c in catalog.category], dtype=str)
        categories, codes = np.unique(names, return_inverse=True) if n else (np.asarray([], dtype=str), np.zeros(0))
        return cls(
            item_ids=np.asarray(catalog.item_ids).astype(str),
            titles=np.asarray(catalog.title, dtype=object),
            categories=categories.astype(str),
            category=np.asarray(codes, dtype=np.int64),
            price=np.asarray(catalog.price, dtype=np.float64),
            published=np.ones(n, dtype=bool) if published is None else np.asarray(published, dtype=bool),
            hidden=np.zeros(n, dtype=bool) if hidden is None else np.asarray(hidden, dtype=bool),
            in_stock=np.ones(n, dtype=bool) if in_stock is None else np.asarray(in_stock, dtype=bool),
        )

    @property
    def servable(self) -> BoolArray:
        return self.published & ~self.hidden & self.in_stock

    def category_of(self, index: int) -> str:
        return str(self.categories[self.category[index]])

    def category_codes(self, names: Sequence[str]) -> IntArray:
        """Codes of the named categories this catalog has (others are ignored)."""
        pos = {str(c): k for k, c in enumerate(self.categories.tolist())}
        return np.asarray([pos[n] for n in names if n in pos], dtype=np.int64)

    def to_arrow(self) -> pa.Table:
        """One row per item (item_id, title, category, price, published, hidden, in_stock)."""
        return pa.table(
            {
                "item_id": pa.array(self.item_ids.tolist(), pa.string()),
                "title": pa.array([str(t) for t in self.titles.tolist()], pa.string()),
                "category": pa.array(self.categories[self.category].tolist(), pa.string()),
                "price": pa.array(self.price, pa.float64()),
                "published": pa.array(self.published),
                "hidden": pa.array(self.hidden),
                "in_stock": pa.array(self.in_stock),
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> ItemFacts:
        """Read what :meth:`to_arrow` wrote."""
        catalog = ItemCatalog(
            np.asarray(table.column("item_id").to_pylist(), dtype=str),
            np.asarray(table.column("title").to_pylist(), dtype=object),
            np.asarray(table.column("category").to_pylist(), dtype=object),
            np.full(table.num_rows, "", dtype=object),
            table.column("price").to_numpy(zero_copy_only=False).astype(np.float64),
        )
        flags = {
            name: table.column(name).to_numpy(zero_copy_only=False) for name in ("published", "hidden", "in_stock")
        }
        return cls.from_catalog(catalog, **flags)


def repeat_purchase_shares(purchases: sp.csr_matrix, facts: ItemFacts) -> dict[str, tuple[int, float]]:
    """Per category: buyers, and the share of them who bought one same product of it on two occasions or more.

    ``purchases`` is members x items, each value the number of distinct purchase
    occasions (orders) of the product (:func:`patron.recs.interactions.build_purchases`).
    """
    coo = sp.coo_matrix(purchases)
    keep = coo.data > 0
    member, item, count = coo.row[keep], coo.col[keep], coo.data[keep]
    n_cat = len(facts.categories)
    cat = facts.category[item]
    pair = np.unique(member.astype(np.int64) * n_cat + cat)
    buyers = np.bincount(pair % n_cat, minlength=n_cat)
    again = np.unique(member[count >= 2].astype(np.int64) * n_cat + cat[count >= 2])
    repeaters = np.bincount(again % n_cat, minlength=n_cat)
    return {
        str(name): (int(buyers[c]), float(repeaters[c] / buyers[c]) if buyers[c] else 0.0)
        for c, name in enumerate(facts.categories.tolist())
    }


def learn_repeat_categories(
    purchases: sp.csr_matrix, facts: ItemFacts, *, threshold: float = 0.2, min_buyers: int = 20
) -> dict[str, float]:
    """Repeat-purchase categories learned from order history, with their repeat share.

    A category is repeat-purchase when at least ``min_buyers`` members bought
    in it and the share of them who bought the *same* product again (on another
    order) is at least ``threshold``: consumables (coffee, nappies) qualify,
    durables (a sofa) do not. Bought products of such categories stay
    recommendable; those of other categories are excluded.
    """
    shares = repeat_purchase_shares(purchases, facts)
    return {name: share for name, (buyers, share) in shares.items() if buyers >= min_buyers and share >= threshold}


class RecRequest(BaseModel):
    """What a caller asks for: filters, lists, diversity and the page."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: list[str] | None = None
    exclude_categories: list[str] = Field(default_factory=list)
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    exclude: list[str] = Field(default_factory=list)
    whitelist: list[str] | None = None
    exclude_purchased: bool = True
    diversity: float | None = Field(default=None, ge=0, le=1)
    k: int = Field(default=10, ge=1, le=200)
    page: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _price_range(self) -> RecRequest:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min is above price_max")
        return self


@dataclass(frozen=True)
class RuleSet:
    """A request's rules compiled against one catalog (see :func:`compile_rules`)."""

    category_ok: BoolArray | None
    price_min: float | None
    price_max: float | None
    blocked: IntArray
    whitelist: IntArray | None


def compile_rules(
    facts: ItemFacts,
    request: RecRequest,
    item_index: Mapping[str, int],
    *,
    purchased: IntArray | None = None,
    repeat: BoolArray | None = None,
    also_block: IntArray | None = None,
) -> RuleSet:
    """Resolve ids and names of ``request`` to indices once.

    ``purchased`` are the member's bought items, ``repeat`` flags repeat-purchase
    category codes; ``also_block`` adds items (e.g. the item a "similar" list is for).
    """
    category_ok: BoolArray | None = None
    if request.categories is not None or request.exclude_categories:
        category_ok = np.ones(len(facts.categories), dtype=bool)
        if request.categories is not None:
            category_ok[:] = False
            category_ok[facts.category_codes(request.categories)] = True
        category_ok[facts.category_codes(request.exclude_categories)] = False
    blocked = [np.asarray([item_index[i] for i in request.exclude if i in item_index], dtype=np.int64)]
    if request.exclude_purchased and purchased is not None and len(purchased):
        bought = np.asarray(purchased, dtype=np.int64)
        if repeat is not None:
            bought = bought[~repeat[facts.category[bought]]]
        blocked.append(bought)
    if also_block is not None:
        blocked.append(np.asarray(also_block, dtype=np.int64))
    whitelist = None
    if request.whitelist is not None:
        whitelist = np.unique(np.asarray([item_index[i] for i in request.whitelist if i in item_index], dtype=np.int64))
    return RuleSet(category_ok, request.price_min, request.price_max, np.unique(np.concatenate(blocked)), whitelist)


def apply_rules(facts: ItemFacts, rules: RuleSet, candidates: IntArray | None = None) -> BoolArray:
    """Which ``candidates`` (item indices; all items if None) the rules allow."""
    idx = np.arange(len(facts.item_ids), dtype=np.int64) if candidates is None else np.asarray(candidates)
    ok = facts.published[idx] & ~facts.hidden[idx] & facts.in_stock[idx]
    if rules.category_ok is not None:
        ok &= rules.category_ok[facts.category[idx]]
    if rules.price_min is not None:
        ok &= facts.price[idx] >= rules.price_min
    if rules.price_max is not None:
        ok &= facts.price[idx] <= rules.price_max
    if len(rules.blocked):
        ok &= ~within(idx, rules.blocked)
    if rules.whitelist is not None:
        ok &= within(idx, rules.whitelist)
    return np.asarray(ok, dtype=bool)


def within(values: IntArray, sorted_items: IntArray) -> BoolArray:
    """Which ``values`` are in ``sorted_items`` (sorted, distinct) by binary search.

    ``np.isin`` sorts both sides on every call; a page checks a few dozen candidates against a sorted list
    (the blocked items and the whitelist are kept sorted and distinct by :func:`compile_rules`).
    """
    if not len(sorted_items):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_items, values), len(sorted_items) - 1)
    found: BoolArray = sorted_items[at] == values
    return found


def normalized_vectors(vectors: np.ndarray[Any, Any] | sp.spmatrix) -> np.ndarray[Any, Any] | sp.csr_matrix:
    """Rows scaled to unit length (zero rows stay zero), so dot products are cosines."""
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m)
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def cosine_affinity(vectors: np.ndarray[Any, Any] | sp.csr_matrix) -> Affinity:
    """Affinity as the cosine of unit-length item ``vectors`` (see :func:`normalized_vectors`)."""
    return functools.partial(_cosines, vectors)


def _cosines(vectors: np.ndarray[Any, Any] | sp.csr_matrix, a: IntArray, b: IntArray) -> np.ndarray[Any, Any]:
    """Cosines (len(a) x len(b)) between rows of unit-length ``vectors``."""
    if sp.issparse(vectors):
        return _sparse_dots(vectors, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    return np.asarray(vectors[a] @ vectors[b].T, dtype=np.float32)


def _sparse_dots(m: sp.csr_matrix, a: IntArray, b: IntArray) -> np.ndarray[Any, Any]:
    """``m[a] @ m[b].T`` as a dense float32 array, straight from the rows' entries.

    The few rows of ``a`` become a small dense block over the columns they use; each entry of ``b``'s rows
    that falls on one of those columns (found through a column lookup table) adds its value times that
    block's row to its ``b`` row (entries come grouped by row, so one ``reduceat`` sums them). No sparse
    matrix is built: scipy's slicing and product check and copy three of them per call, which costs more
    than the arithmetic on a served page.
    """
    out = np.zeros((len(b), len(a)), dtype=np.float32)
    if len(a) == 0 or len(b) == 0:
        return out.T
    ra, ca, va = csr_rows(m, a)
    rb, cb, vb = csr_rows(m, b)
    used, where = np.unique(ca, return_inverse=True)
    block = np.zeros((len(used), len(a)), dtype=np.float32)
    block[where, ra] = va
    lookup = np.full(m.shape[1], -1, dtype=np.int32)  # column -> its row in block (a few hundred kB at most)
    lookup[used] = np.arange(len(used), dtype=np.int32)
    pos = lookup[cb]
    hit = np.flatnonzero(pos >= 0)
    if len(hit):
        rows = rb[hit]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(block[pos[hit]] * vb[hit, None], starts, axis=0)
    return out.T


def mmr(
    candidates: IntArray,
    scores: np.ndarray[Any, Any],
    k: int,
    lam: float,
    *,
    vectors: np.ndarray[Any, Any] | sp.csr_matrix | None = None,
    categories: IntArray | None = None,
) -> IntArray:
    """Maximal marginal relevance (Carbonell & Goldstein 1998): pick ``k`` of ``candidates``.

    Each step takes the candidate maximising ``lam * rel - (1 - lam) * max_sim``,
    ``rel`` being its score min-max scaled over the candidates and ``max_sim`` its
    largest similarity to an item already picked: the cosine of unit-length
    ``vectors`` rows, or 1 for the same category when only ``categories`` (codes
    per item) are given. ``lam = 1`` keeps the score order.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if len(cand) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    span = s.max() - s.min()
    rel = (s - s.min()) / span if span > 0 else np.ones_like(s)
    if vectors is not None:
        sim = _cosines(vectors, cand, cand).astype(np.float64)
    elif categories is not None:
        codes = np.asarray(categories)[cand]
        sim = (codes[:, None] == codes[None, :]).astype(np.float64)
    else:
        sim = np.zeros((len(cand), len(cand)))
    picked: list[int] = []
    max_sim = np.zeros(len(cand))
    free = np.ones(len(cand), dtype=bool)
    for _ in range(min(k, len(cand))):
        value = np.where(free, lam * rel - (1 - lam) * max_sim, -np.inf)
        best = int(np.argmax(value))
        picked.append(best)
        free[best] = False
        max_sim = np.maximum(max_sim, sim[best])
    return cand[np.asarray(picked, dtype=np.int64)]


def explain(
    items: IntArray,
    facts: ItemFacts,
    affinity: Affinity | None,
    *,
    bought: IntArray,
    viewed: IntArray,
) -> list[tuple[ReasonCode, dict[str, str]]]:
    """A reason per personalized item: the member's bought (else viewed) item with the highest affinity to it.

    ``affinity`` is the model's own (item-kNN: the similarity the item's score summed) or the cosine of
    its item vectors (:func:`cosine_affinity`). An item with no positive affinity to a bought or viewed
    item gets ``for_you``.
    """
    count = len(items)
    if affinity is None or count == 0 or len(bought) + len(viewed) == 0:
        return [("for_you", {})] * count
    # one table for both kinds of anchor: bought items first, then viewed ones
    table = affinity(np.asarray(items, dtype=np.int64), np.concatenate([bought, viewed]).astype(np.int64))
    rows = np.arange(count)
    picks: list[tuple[ReasonCode, IntArray, IntArray, np.ndarray[Any, Any]]] = []
    kinds: tuple[tuple[ReasonCode, IntArray, np.ndarray[Any, Any]], ...] = (
        ("because_you_bought", bought, table[:, : len(bought)]),
        ("because_you_viewed", viewed, table[:, len(bought) :]),
    )
    for code, anchor, part in kinds:
        if len(anchor):
            best = np.argmax(part, axis=1)
            picks.append((code, anchor, best, part[rows, best]))
    # per item: the first kind of anchor with a positive affinity, and that anchor (-1: none, "for_you")
    kind = np.full(count, -1, dtype=np.int64)
    chosen = np.zeros(count, dtype=np.int64)
    for k, (_code, anchor, best, value) in enumerate(picks):
        take = (kind < 0) & (value > 0)
        kind[take] = k
        chosen[take] = anchor[best[take]]
    named = kind >= 0
    ids = iter(facts.item_ids[chosen[named]].tolist())  # one read of the ids and titles for the whole page
    titles = iter(facts.titles[chosen[named]].tolist())
    return [
        (picks[k][0], {"item_id": str(next(ids)), "title": str(next(titles) or "")}) if k >= 0 else ("for_you", {})
        for k in kind.tolist()
    ]
