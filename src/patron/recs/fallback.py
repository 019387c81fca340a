"""The fallback chain at serving time: every member and every visitor gets a sensible list.

For one request (a history row, possibly empty):

1. no history: what is trending in the member's segment, if the segment has
   any recent activity (``trending_in_segment``); otherwise trending over
   everyone (``trending``);
2. a short history (fewer than ``min_history`` distinct items) and a content
   model at hand: the model's and the content model's row-normalized scores
   blended (``content``), so that a few items already steer the list while
   attributes fill what the model cannot know yet;
3. otherwise the model's own scores (``personalized``).

Whatever the source, items the source cannot tell apart (scores at the row's
minimum, e.g. no co-occurrence at all) never fill the list: trending items fill
the remaining places, so a list is always ``k`` long when the catalog allows.
All score arrays are aligned to the model's ``item_ids``. Pure functions: no
web or database code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, Recommender

__all__ = ["RecommendationList", "Source", "choose_list", "segment_popularity", "trending_scores"]

DAY_SECONDS = 86_400.0
Source = Literal["personalized", "content", "trending_in_segment", "trending"]


class RecommendationList(NamedTuple):
    """``k`` item indices (into the model's ``item_ids``; -1 pads a short catalog), their scores and the source."""

    items: IntArray
    scores: FloatArray
    source: Source


def _decay(data: Interactions, half_life_days: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    if not half_life_days > 0:
        raise ValueError("half_life_days must be positive")
    if len(data.times) == 0:
        return np.zeros(0, dtype=np.float64)
    age_days = np.maximum(float(data.times.max()) - data.times, 0.0) / DAY_SECONDS
    return np.asarray(data.weights, dtype=np.float64) * np.exp2(-age_days / half_life_days)


def trending_scores(data: Interactions, half_life_days: float = 7.0) -> FloatArray:
    """Time-decayed popularity of each item: event weights halved every ``half_life_days`` before the last event."""
    totals = np.bincount(data.items, weights=_decay(data, half_life_days), minlength=data.n_items)
    return totals.astype(np.float32)


def segment_popularity(
    data: Interactions, user_segments: Mapping[str, str], half_life_days: float = 7.0
) -> dict[str, FloatArray]:
    """Trending scores per segment: :func:`trending_scores` over the events of each segment's users.

    Users missing from ``user_segments`` count in no segment.
    """
    decayed = _decay(data, half_life_days)
    labels = sorted(set(user_segments.values()))
    code_of = {label: c for c, label in enumerate(labels)}
    user_code = np.asarray([code_of.get(user_segments.get(u, ""), -1) for u in data.user_ids.tolist()], dtype=np.int64)
    event_code = user_code[data.users] if len(data.users) else np.zeros(0, dtype=np.int64)
    keep = event_code >= 0
    table = sp.csr_matrix(
        (decayed[keep], (event_code[keep], data.items[keep])), shape=(len(labels), data.n_items), dtype=np.float64
    )
    dense = np.asarray(table.todense(), dtype=np.float32)
    return {label: dense[c] for c, label in enumerate(labels)}


def _minmax(row: np.ndarray[Any, Any]) -> FloatArray:
    finite = np.isfinite(row)
    if not finite.any():
        return np.zeros(len(row), dtype=np.float32)
    lo, hi = float(row[finite].min()), float(row[finite].max())
    if hi <= lo:
        return np.zeros(len(row), dtype=np.float32)
    return np.where(finite, (row - lo) / (hi - lo), 0.0).astype(np.float32)


def _pick(
    primary: np.ndarray[Any, Any], backup: np.ndarray[Any, Any], k: int, seen: np.ndarray[Any, Any]
) -> tuple[IntArray, FloatArray]:
    """Top ``k`` informative items of ``primary``, then ``backup``'s best to fill; ``seen`` never."""
    p = np.where(np.isfinite(primary), primary, -np.inf).astype(np.float64)
    p[seen] = -np.inf
    floor = p[np.isfinite(p)].min() if np.isfinite(p).any() else -np.inf
    informative = np.isfinite(p) & (p > floor)
    order = np.lexsort((np.arange(len(p)), -p))
    chosen = order[informative[order]][:k]
    b = np.where(np.isfinite(backup), backup, -np.inf).astype(np.float64)
    b[seen] = -np.inf
    b[chosen] = -np.inf
    extra = np.lexsort((np.arange(len(b)), -b))
    extra = extra[np.isfinite(b[extra])][: k - len(chosen)]
    items = np.full(k, -1, dtype=np.int64)
    scores = np.full(k, -np.inf, dtype=np.float32)
    items[: len(chosen)] = chosen
    scores[: len(chosen)] = p[chosen]
    fill = floor if np.isfinite(floor) else 0.0
    items[len(chosen) : len(chosen) + len(extra)] = extra
    scores[len(chosen) : len(chosen) + len(extra)] = fill
    return items, scores


def choose_list(
    model: Recommender,
    history: sp.csr_matrix | None,
    k: int = 10,
    *,
    segment: str | None = None,
    segment_scores: Mapping[str, np.ndarray[Any, Any]] | None = None,
    trending: np.ndarray[Any, Any] | None = None,
    content: Recommender | None = None,
    user: int = -1,
    min_history: int = 3,
    content_weight: float = 0.5,
    exclude_seen: bool = True,
) -> RecommendationList:
    """``k`` items for one request and the source they came from (see the module docstring).

    ``history`` is a 1 x items row over ``model.item_ids`` (None: empty); ``user`` the fitted user row
    or -1; ``trending`` defaults to the model's training popularity (distinct users per item). Items
    filled in from trending carry the primary source's lowest score.
    """
    n_items = len(model.item_ids)
    h = sp.csr_matrix((1, n_items), dtype=np.float32) if history is None else sp.csr_matrix(history, dtype=np.float32)
    h = h[:1]
    h.eliminate_zeros()
    if h.shape[1] != n_items:
        raise ValueError("the history does not match the model's items")
    if trending is None:
        trending = np.asarray((model.history_matrix > 0).sum(axis=0), dtype=np.float32).ravel()
    for name, array in (("trending", trending), *(((f"segment {s}", a) for s, a in (segment_scores or {}).items()))):
        if len(array) != n_items:
            raise ValueError(f"{name} scores do not match the model's items")
    seen = np.zeros(n_items, dtype=bool)
    if exclude_seen:
        seen[h.indices] = True
    n_seen = h.nnz
    source: Source
    if n_seen == 0:
        seg = None if segment is None or segment_scores is None else segment_scores.get(segment)
        if seg is not None and np.any(np.asarray(seg) > 0):
            source, primary = "trending_in_segment", np.asarray(seg, dtype=np.float32)
        else:
            source, primary = "trending", np.asarray(trending, dtype=np.float32)
    elif n_seen < min_history and content is not None and content is not model:
        if len(content.item_ids) != n_items or np.any(content.item_ids != model.item_ids):
            raise ValueError("the content model's items differ from the model's")
        rows = np.asarray([user], dtype=np.int64)
        own = _minmax(model.scores(h, rows)[0])
        attrs = _minmax(content.scores(h, rows)[0])
        source, primary = "content", (1.0 - content_weight) * own + content_weight * attrs
    else:
        source, primary = "personalized", model.scores(h, np.asarray([user], dtype=np.int64))[0]
    items, scores = _pick(primary, np.asarray(trending), k, seen)
    return RecommendationList(items, scores, source)
