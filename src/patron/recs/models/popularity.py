"""Non-personalized baselines: popularity and time-decayed trending.

Both give every request the same item scores; the contract's ``exclude_seen``
then removes what a member already has. They are the floor every personalized
model must beat, and the fallback for a member with no history at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["Popularity", "Trending"]

DAY_SECONDS = 86_400.0
Count = Literal["users", "weight"]


def _broadcast(item_scores: FloatArray, rows: int) -> FloatArray:
    return np.broadcast_to(item_scores, (rows, len(item_scores))).astype(np.float32)


def _as_of_seconds(value: Any, data_last: float) -> float:
    """An ``as_of`` parameter (None, epoch seconds, or an ISO date/time) as epoch seconds (UTC)."""
    if value is None:
        return data_last
    if isinstance(value, int | float):
        return float(value)
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class _ItemScoreModel(Recommender):
    """A model whose fitted state is one score per item, the same for every request."""

    personalized: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.item_scores: FloatArray = np.zeros(0, dtype=np.float32)

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """The fitted item scores, one identical row per request."""
        return _broadcast(self.item_scores, history.shape[0])

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"item_scores": self.item_scores}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.item_scores = np.asarray(state["item_scores"], dtype=np.float32)


@register
class Popularity(_ItemScoreModel):
    """Most popular items.

    Parameters
    ----------
    count : "users" or "weight"
        ``users`` scores an item by the number of distinct users who interacted
        with it; ``weight`` by the sum of its interaction weights.
    window_days : float or None
        If set, only events in the last ``window_days`` days before the data's
        last event time count (all events when the data has no times).

    """

    name: ClassVar[str] = "popularity"

    def __init__(self, *, count: Count = "users", window_days: float | None = None) -> None:
        if count not in ("users", "weight"):
            raise ValueError(f"count must be 'users' or 'weight', not {count!r}")
        super().__init__(count=count, window_days=window_days)

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        keep = np.ones(len(data.users), dtype=bool)
        window = self.params["window_days"]
        if window is not None and len(data.times) and np.any(data.times != 0):
            keep = data.times >= data.times.max() - float(window) * DAY_SECONDS
        users, cols, weights = data.users[keep], data.items[keep], data.weights[keep]
        if self.params["count"] == "weight":
            totals = np.bincount(cols, weights=weights, minlength=data.n_items)
        else:
            pairs = np.unique(users * max(data.n_items, 1) + cols)
            totals = np.bincount(pairs % max(data.n_items, 1), minlength=data.n_items)
        self.item_scores = totals.astype(np.float32)


@register
class Trending(_ItemScoreModel):
    r"""Exponentially time-decayed popularity.

    .. math:: s_i = \sum_{e \in E_i,\ t_e \le T} w_e \, 2^{-(T - t_e) / h}

    where :math:`T` is ``as_of`` (default: the data's last event time), :math:`h`
    the half-life in days and :math:`w_e` the event's weight. Events after
    :math:`T` are ignored. Without event times every event has age 0 and the
    model equals weighted popularity.

    Parameters
    ----------
    half_life_days : float
        Days after which an event counts half.
    as_of : float, str or None
        Epoch seconds or an ISO date/time (UTC when no offset is given);
        None for the data's last event time.

    """

    name: ClassVar[str] = "trending"

    def __init__(self, *, half_life_days: float = 7.0, as_of: float | str | None = None) -> None:
        if not half_life_days > 0:
            raise ValueError("half_life_days must be positive")
        super().__init__(half_life_days=half_life_days, as_of=as_of)

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        last = float(data.times.max()) if len(data.times) else 0.0
        as_of = _as_of_seconds(self.params["as_of"], last)
        age_days = (as_of - data.times) / DAY_SECONDS
        keep = age_days >= 0
        decay = np.exp2(-age_days[keep] / float(self.params["half_life_days"]))
        totals = np.bincount(data.items[keep], weights=data.weights[keep] * decay, minlength=data.n_items)
        self.item_scores = totals.astype(np.float32)
