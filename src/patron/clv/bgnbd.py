"""BG/NBD: the beta-geometric / negative binomial distribution model of repeat purchasing.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way: an alternative to
the Pareto/NBD model. *Marketing Science* 24(2), 275-284.

While active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after every repeat
purchase the customer drops out for good with probability p ~ Beta(a, b). Time is measured from the first
purchase; all times share one unit (weeks for CDNOW).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1  # type: ignore[import-untyped]

from patron.clv.schemas import BgNbdParams, FloatArray, ModelFit, maximise_log_likelihood
from patron.clv.summary import CustomerSummary

__all__ = [
    "conditional_expected_purchases",
    "expected_purchases",
    "fit",
    "log_likelihood",
    "probability_alive",
    "simulate",
]

_START = (1.0, 1.0, 1.0, 1.0)


def _floats(*values: npt.ArrayLike) -> list[FloatArray]:
    return [np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values)]


def _count_terms(r: float, alpha: float, a: float, b: float, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ln[Gamma(r+x) alpha^r / Gamma(r)] + ln[B(a, b+x) / B(a, b)], with the gradient in (r, alpha, a, b)."""
    value = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha)
    gradient = np.stack([d_r, np.full_like(x, r / alpha), d_ab, d_ab + digamma(b + x) - digamma(b)])
    return value, gradient


def _timing_terms(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: FloatArray,
    t_x: FloatArray,
    age: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """ln[(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)], with the gradient in (r, alpha, a, b)."""
    repeat = x > 0
    b_x_1 = b + np.maximum(x - 1.0, 0.0)
    log_at_age, log_at_t_x = np.log(alpha + age), np.log(alpha + t_x)
    # log odds of "dropped out right after the last purchase" against "still alive"; masked for x = 0
    odds = np.log(a) - np.log(b_x_1) + (r + x) * (log_at_age - log_at_t_x)
    softplus = np.maximum(odds, 0.0) + np.log1p(np.exp(-np.abs(odds)))
    value = -(r + x) * log_at_age + softplus * repeat
    w = expit(odds) * repeat  # posterior share of the dropped-out branch
    d_r = -(1 - w) * log_at_age - w * log_at_t_x
    d_alpha = -(r + x) * ((1 - w) / (alpha + age) + w / (alpha + t_x))
    return value, np.stack([d_r, d_alpha, w / a, -w / b_x_1])


def log_likelihood(
    params: BgNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""Per-customer log-likelihood (FHL 2005, eq. 6).

    .. math::
        L(r, \alpha, a, b \mid x, t_x, T) = \frac{B(a, b+x)}{B(a, b)}
            \frac{\Gamma(r+x)\,\alpha^r}{\Gamma(r)\,(\alpha+T)^{r+x}}
          + \delta_{x>0}\, \frac{B(a+1, b+x-1)}{B(a, b)}
            \frac{\Gamma(r+x)\,\alpha^r}{\Gamma(r)\,(\alpha+t_x)^{r+x}}
    """
    x, t_x, age = _floats(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return _count_terms(r, alpha, a, b, x)[0] + _timing_terms(r, alpha, a, b, x, t_x, age)[0]


def _objective(columns: Sequence[FloatArray], weights: FloatArray) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Weighted mean negative log-likelihood; terms in x alone are evaluated once per distinct x."""
    x, t_x, age = columns
    counts, index = np.unique(x, return_inverse=True)
    count_weights = np.bincount(index, weights=weights)

    def negative_mean(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = (float(v) for v in np.exp(theta))
        by_count, count_gradient = _count_terms(r, alpha, a, b, counts)
        by_timing, timing_gradient = _timing_terms(r, alpha, a, b, x, t_x, age)
        value = count_weights @ by_count + weights @ by_timing
        gradient = count_gradient @ count_weights + timing_gradient @ weights
        return -float(value), -gradient * np.exp(theta)

    return negative_mean


def fit(summary: CustomerSummary, *, initial: BgNbdParams | None = None) -> ModelFit[BgNbdParams]:
    """Maximum-likelihood BG/NBD fit (L-BFGS-B on log-parameters, analytic gradient)."""
    summary.require_repeat_customers()
    start = _START if initial is None else (initial.r, initial.alpha, initial.a, initial.b)
    columns = [summary.frequency, summary.recency, summary.T]
    values, ll, convergence = maximise_log_likelihood(_objective, start, columns, jac=True)
    r, alpha, a, b = (float(v) for v in values)
    return ModelFit("bgnbd", BgNbdParams(r, alpha, a, b), ll, len(summary), convergence)


def probability_alive(
    params: BgNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""P(active at T | x, t_x, T) (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model").

    .. math::
        P = \left[1 + \delta_{x>0} \frac{a}{b+x-1}
            \left(\frac{\alpha+T}{\alpha+t_x}\right)^{r+x}\right]^{-1}
    """
    x, t_x, age = _floats(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds = np.log(a) - np.log(b + np.maximum(x - 1, 0)) + (r + x) * np.log((alpha + age) / (alpha + t_x))
    return np.where(x > 0, expit(-log_odds), 1.0)


def conditional_expected_purchases(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""Expected purchases in (T, T+t] for a customer with history (x, t_x, T) (FHL 2005, eq. 10).

    .. math::
        E[Y(t) \mid x, t_x, T] = \frac{a+b+x-1}{a-1}
            \left[1 - \left(\frac{\alpha+T}{\alpha+T+t}\right)^{r+x}
            {}_2F_1\!\left(r+x, b+x; a+b+x-1; \frac{t}{\alpha+T+t}\right)\right] P(\text{alive})

    The formula holds for any a != 1 (CDNOW has a < 1).
    """
    horizon, x, t_x, age = _floats(t, frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_power = (r + x) * np.log((alpha + age) / (alpha + age + horizon))
    bracket = 1.0 - np.exp(log_power) * hyp2f1(r + x, b + x, a + b + x - 1.0, horizon / (alpha + age + horizon))
    return np.asarray((a + b + x - 1.0) / (a - 1.0) * bracket * probability_alive(params, x, t_x, age))


def expected_purchases(params: BgNbdParams, t: npt.ArrayLike) -> FloatArray:
    r"""Unconditional E[X(t)] for a customer who made a first purchase at time 0 (FHL 2005, eq. 9).

    .. math::
        E[X(t)] = \frac{a+b-1}{a-1}\left[1 - \left(\frac{\alpha}{\alpha+t}\right)^r
            {}_2F_1\!\left(r, b; a+b-1; \frac{t}{\alpha+t}\right)\right]
    """
    horizon = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    power = (alpha / (alpha + horizon)) ** r
    bracket = 1.0 - power * hyp2f1(r, b, a + b - 1.0, horizon / (alpha + horizon))
    return np.asarray((a + b - 1.0) / (a - 1.0) * bracket, dtype=np.float64)


def simulate(params: BgNbdParams, T: npt.ArrayLike, rng: np.random.Generator) -> CustomerSummary:  # noqa: N803
    """Draw customers from the BG/NBD story, one per entry of ``T`` (observation length after the first buy).

    The customer drops out right after repeat purchase M ~ Geometric(p); the Poisson(lambda T) arrivals on
    [0, T] are uniform, so the x-th of n arrivals sits at T * Beta(x, n - x + 1).
    """
    age = np.asarray(T, dtype=np.float64).reshape(-1)
    rate = rng.gamma(params.r, 1.0 / params.alpha, size=age.shape)
    dropout = np.maximum(rng.beta(params.a, params.b, size=age.shape), 1e-12)  # geometric needs p > 0
    arrivals = rng.poisson(rate * age)
    x = np.minimum(arrivals, rng.geometric(dropout))
    position = rng.beta(np.maximum(x, 1), arrivals - x + 1.0)
    t_x = np.where(x > 0, age * position, 0.0)
    return CustomerSummary(x.astype(np.float64), t_x, age)
