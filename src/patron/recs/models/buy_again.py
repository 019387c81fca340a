r"""Buy again: a member's own history, most bought first.

.. math:: s_{uj} = f_{uj} h_{uj} + \epsilon_u \, p_j

where :math:`h_{uj}` is the history weight (for example the number of orders
holding the item), :math:`f_{uj} \in (0, 1]` an optional recency factor,
:math:`p_j \in [0, 1)` the item's popularity (distinct users, divided by the
maximum plus one) and :math:`\epsilon_u` a thousandth of the smallest
positive term of the row (1 for an empty history), so popularity only breaks
ties between equally bought items and orders the items the member never had.
With ``exclude_seen`` the model is therefore popularity, by design.

The recency factor, with ``half_life_days`` :math:`h`, is the share of the
pair's weight left after halving each event's weight every :math:`h` days
before the data's last event, :math:`f_{uj} = \sum_e w_e 2^{-a_e/h} / \sum_e w_e`;
it is learned at fit for fitted users' items and is 1 for anything newer
(items folded into a history later, or requests that are not fitted users).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["BuyAgain"]

DAY_SECONDS = 86_400.0
#: popularity's share of the smallest history term
TIE_BREAK = 1e-3


@register
class BuyAgain(Recommender):
    r"""The member's own items by weight (optionally recency-decayed), popularity breaking ties.

    Parameters
    ----------
    half_life_days : float or None
        If set, an event's weight halves every ``half_life_days`` days before the data's last event.
    log_weights : bool
        Score :math:`\log(1 + f h)` instead of :math:`f h`, damping heavy repeaters (useful in a hybrid).

    """

    name: ClassVar[str] = "buy_again"

    def __init__(self, *, half_life_days: float | None = None, log_weights: bool = False) -> None:
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError("half_life_days must be positive")
        super().__init__(
            half_life_days=None if half_life_days is None else float(half_life_days), log_weights=bool(log_weights)
        )
        self.popularity: FloatArray = np.zeros(0, dtype=np.float32)
        self.lost: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        binary = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        counts = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        self.popularity = (counts / (counts.max(initial=0.0) + 1.0)).astype(np.float32)
        self.lost = sp.csr_matrix(data.matrix.shape, dtype=np.float32)
        half_life = self.params["half_life_days"]
        if half_life is not None and len(data.times):
            age_days = np.maximum(float(data.times.max()) - data.times, 0.0) / DAY_SECONDS
            decayed = data.weights * np.exp2(-age_days / half_life)
            shape = data.matrix.shape
            kept = sp.csr_matrix((decayed, (data.users, data.items)), shape=shape, dtype=np.float64)
            total = sp.csr_matrix((data.weights, (data.users, data.items)), shape=shape, dtype=np.float64)
            kept.sum_duplicates()
            total.sum_duplicates()
            lost = total - kept
            ratio = lost.multiply(total.power(-1.0))
            self.lost = sp.csr_matrix(ratio, dtype=np.float32)
            self.lost.eliminate_zeros()

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """The history's weights times their recency factors, plus the popularity tie-break."""
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        if users is not None and self.lost.nnz:
            rows = np.asarray(users, dtype=np.int64)
            known = rows >= 0
            lost = sp.diags(known.astype(np.float32)) @ self.lost[np.where(known, rows, 0)]
            h = sp.csr_matrix(h - h.multiply(lost), dtype=np.float32)
            h.eliminate_zeros()
        if self.params["log_weights"]:
            h.data = np.log1p(np.maximum(h.data, 0.0)).astype(np.float32)
        out = np.asarray(h.todense(), dtype=np.float32)
        positive = h.copy()
        positive.data[positive.data <= 0] = np.inf
        lengths = np.diff(positive.indptr)
        scale = np.ones(h.shape[0], dtype=np.float32)
        nonempty = lengths > 0
        if nonempty.any():
            smallest = np.minimum.reduceat(positive.data, positive.indptr[:-1][nonempty])
            scale[nonempty] = np.where(np.isfinite(smallest), smallest, 1.0)
        return np.asarray(out + (TIE_BREAK * scale)[:, None] * self.popularity[None, :], dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"popularity": self.popularity, "lost": self.lost}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.popularity = np.asarray(state["popularity"], dtype=np.float32)
        self.lost = sp.csr_matrix(state["lost"], dtype=np.float32)
