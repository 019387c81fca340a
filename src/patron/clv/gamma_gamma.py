"""Gamma-Gamma spend model and discounted customer lifetime value.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for customer base
analysis. *Journal of Marketing Research* 42(4), 415-430; and Fader & Hardie (2013), "The Gamma-Gamma model of
monetary value" (brucehardie.com/notes/025).

A customer's transaction values are Gamma(p, nu), their mean p / nu varying across customers through
nu ~ Gamma(q, v) (rate v). Spend is assumed independent of the purchase process, so the model is fitted on the
mean repeat spend ``monetary_value`` of the customers with at least one repeat purchase.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln  # type: ignore[import-untyped]

from patron.clv import bgnbd, pareto_nbd
from patron.clv.schemas import (
    BgNbdParams,
    FloatArray,
    GammaGammaParams,
    ModelFit,
    ParetoNbdParams,
    TimeUnit,
    maximise_log_likelihood,
)
from patron.clv.summary import CustomerSummary
from patron.errors import ValidationError

__all__ = [
    "UNITS_PER_MONTH",
    "conditional_expected_average_spend",
    "customer_lifetime_value",
    "fit",
    "log_likelihood",
    "simulate",
]

_START = (1.0, 1.0, 1.0)
# lifetimes' month lengths (customer_lifetime_value's `freq` factors), kept so that results agree with it.
UNITS_PER_MONTH: Mapping[TimeUnit, float] = {"days": 30.0, "weeks": 4.345, "months": 1.0}


def _count_terms(p: float, q: float, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The log of Gamma(px+q) / Gamma(px), with the gradient in (p, q, v)."""
    value = gammaln(p * x + q) - gammaln(p * x)
    d_pq = digamma(p * x + q)
    return value, np.stack([x * (d_pq - digamma(p * x)), d_pq, np.zeros_like(x)])


def _spend_terms(p: float, q: float, v: float, x: FloatArray, m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The rest of ln f(m | x), with the gradient in (p, q, v)."""
    log_m, log_x, log_total = np.log(m), np.log(x), np.log(x * m + v)
    value = -gammaln(q) + q * np.log(v) + (p * x - 1.0) * log_m + p * x * log_x - (p * x + q) * log_total
    d_p = x * (log_m + log_x - log_total)
    d_q = -digamma(q) + np.log(v) - log_total
    d_v = q / v - (p * x + q) / (x * m + v)
    return value, np.stack([d_p, d_q, d_v])


def log_likelihood(params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> FloatArray:
    r"""Per-customer log density of the mean spend m = z-bar over x > 0 repeat purchases (Fader & Hardie 2013).

    .. math::
        f(m \mid p, q, v; x) = \frac{\Gamma(px+q)}{\Gamma(px)\,\Gamma(q)}
            \frac{v^q\, m^{px-1}\, x^{px}}{(v + m x)^{px+q}}
    """
    x, m = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(frequency, monetary_value))
    return _count_terms(params.p, params.q, x)[0] + _spend_terms(params.p, params.q, params.v, x, m)[0]


def _objective(columns: Sequence[FloatArray], weights: FloatArray) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    x, m = columns
    counts, index = np.unique(x, return_inverse=True)
    count_weights = np.bincount(index, weights=weights)

    def negative_mean(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = (float(value) for value in np.exp(theta))
        by_count, count_gradient = _count_terms(p, q, counts)
        by_spend, spend_gradient = _spend_terms(p, q, v, x, m)
        value = count_weights @ by_count + weights @ by_spend
        return -float(value), -(count_gradient @ count_weights + spend_gradient @ weights) * np.exp(theta)

    return negative_mean


def _repeat_spend(summary: CustomerSummary) -> tuple[FloatArray, FloatArray]:
    if summary.monetary_value is None:
        raise ValidationError("the Gamma-Gamma model needs monetary_value", field="monetary_value")
    summary.require_repeat_customers()
    repeat = summary.repeat_customers()
    spend = repeat.monetary_value if repeat.monetary_value is not None else np.zeros(len(repeat))
    if np.any(spend <= 0):
        raise ValidationError(f"{int(np.sum(spend <= 0))} repeat customers have monetary_value <= 0", "monetary_value")
    return repeat.frequency, spend


def fit(summary: CustomerSummary, *, initial: GammaGammaParams | None = None) -> ModelFit[GammaGammaParams]:
    """Maximum-likelihood fit on the customers with frequency > 0 (L-BFGS-B, analytic gradient)."""
    x, spend = _repeat_spend(summary)
    start = _START if initial is None else (initial.p, initial.q, initial.v)
    values, ll, convergence = maximise_log_likelihood(_objective, start, [x, spend], jac=True)
    p, q, v = (float(value) for value in values)
    return ModelFit("gammagamma", GammaGammaParams(p, q, v), ll, len(x), convergence)


def conditional_expected_average_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    r"""E[Z | p, q, v, m, x]: a weighted mean of the population's and the customer's own mean spend (FHL 2005).

    .. math::
        E[Z \mid m, x] = \frac{q-1}{px+q-1} \frac{v p}{q-1} + \frac{px}{px+q-1} m = \frac{(v + m x)\,p}{px+q-1}

    Requires q > 1 (otherwise the population mean spend is infinite).
    """
    if params.q <= 1:
        raise ValidationError(f"q = {params.q:.4g} <= 1: the mean spend is not finite", field="q")
    x, m = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(frequency, monetary_value))
    return np.asarray((params.v + m * x) * params.p / (params.p * x + params.q - 1.0), dtype=np.float64)


def _conditional_purchases(model: BgNbdParams | ParetoNbdParams, t: float, summary: CustomerSummary) -> FloatArray:
    if isinstance(model, BgNbdParams):
        return bgnbd.conditional_expected_purchases(model, t, summary.frequency, summary.recency, summary.T)
    return pareto_nbd.conditional_expected_purchases(model, t, summary.frequency, summary.recency, summary.T)


def customer_lifetime_value(
    purchases: BgNbdParams | ParetoNbdParams,
    spend: GammaGammaParams,
    summary: CustomerSummary,
    *,
    time_unit: TimeUnit,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> FloatArray:
    r"""Discounted value of each customer's purchases over the next ``months``, as lifetimes computes it.

    .. math::
        CLV = \sum_{i=1}^{months} E[Z \mid m, x]\,
            \frac{E[Y(i k) \mid x, t_x, T] - E[Y((i-1) k) \mid x, t_x, T]}{(1 + d)^i}

    with k = ``UNITS_PER_MONTH[time_unit]`` (the unit of recency and T), d the monthly discount rate and E[Y]
    from the transaction model (BG/NBD or Pareto/NBD).
    """
    if months < 1:
        raise ValidationError("months must be at least 1", field="months")
    if monthly_discount_rate < 0:
        raise ValidationError("the discount rate cannot be negative", field="monthly_discount_rate")
    if summary.monetary_value is None:
        raise ValidationError("customer lifetime value needs monetary_value", field="monetary_value")
    per_month = UNITS_PER_MONTH[time_unit]
    value = conditional_expected_average_spend(spend, summary.frequency, summary.monetary_value)
    cumulative = [np.zeros(len(summary))] + [
        _conditional_purchases(purchases, i * per_month, summary) for i in range(1, months + 1)
    ]
    discount = (1.0 + monthly_discount_rate) ** -np.arange(1, months + 1)
    return np.asarray(value * (discount @ np.diff(np.stack(cumulative), axis=0)), dtype=np.float64)


def simulate(params: GammaGammaParams, frequency: npt.ArrayLike, rng: np.random.Generator) -> FloatArray:
    """Mean spend of each customer's ``frequency`` repeat purchases (0 where frequency is 0)."""
    x = np.asarray(frequency, dtype=np.float64).reshape(-1)
    nu = rng.gamma(params.q, 1.0 / params.v, size=x.shape)
    total = rng.gamma(np.maximum(params.p * x, 1e-12), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1.0), 0.0)
