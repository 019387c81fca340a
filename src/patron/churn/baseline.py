r"""The BG/NBD baselines the churn model is compared with, from the same per-member frame.

The purchase-day summary (time in weeks, one purchase per calendar day) is the one
:func:`patron.analytics.member_value.purchase_days` computes: ``x`` = purchase days - 1, ``t_x`` = last
minus first purchase day, ``T`` = cut-off minus first purchase day. The BG/NBD model is fitted on it at
the cut-off (no labels involved), then gives two churn scores:

- ``1 - P(alive)`` (Fader, Hardie & Lee 2005, "Computing P(alive) using the BG/NBD model"), which is 0
  for every single-purchase member, since BG/NBD lets a member drop out only after a repeat purchase;
- the model's own probability of the churn label, no purchase in the next ``t`` weeks:

.. math::
    P(X(T, T + t) = 0) = 1 - P_\text{alive} + P_\text{alive}
        \left(\frac{\alpha + T}{\alpha + T + t}\right)^{r + x}

(an active member's rate has the posterior Gamma(r + x, alpha + T), so no purchase in ``t`` has that
Gamma-Poisson probability).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from patron.clv import bgnbd
from patron.clv.schemas import BgNbdParams, FloatArray
from patron.clv.summary import CustomerSummary
from patron.errors import ValidationError

__all__ = ["BgNbdScores", "bgnbd_scores"]

log = logging.getLogger(__name__)
_WEEK = 7 * 86400.0


@dataclass(frozen=True)
class BgNbdScores:
    """P(alive) and P(no purchase over the horizon) per member, with the fitted parameters."""

    params: BgNbdParams
    p_alive: FloatArray
    p_no_purchase: FloatArray


def bgnbd_scores(
    purchase_days: FloatArray, first_day: FloatArray, last_day: FloatArray, cut_off_seconds: float, horizon_days: int
) -> BgNbdScores | None:
    """Fit BG/NBD at the cut-off and score every member; None when the model cannot be fitted."""
    try:
        summary = CustomerSummary(
            frequency=purchase_days - 1,
            recency=(last_day - first_day) / _WEEK,
            T=(cut_off_seconds - first_day) / _WEEK,
        )
        params = bgnbd.fit(summary).params
    except ValidationError as exc:
        log.warning("BG/NBD baseline not fitted", extra={"reason": str(exc)})
        return None
    x, t_x, age = summary.frequency, summary.recency, summary.T
    alive = bgnbd.probability_alive(params, x, t_x, age)
    quiet = ((params.alpha + age) / (params.alpha + age + horizon_days / 7)) ** (params.r + x)
    return BgNbdScores(params, alive, np.asarray(1 - alive + alive * quiet, dtype=np.float64))
