"""Pareto/NBD: Poisson purchasing while alive, exponential lifetimes, gamma heterogeneity in both.

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your customers: who are they and what will
they do next? *Management Science* 33(1), 1-24. The likelihood is written as in Fader, P. S. & Hardie, B. G. S.
(2005), "A note on deriving the Pareto/NBD model and related expressions" (brucehardie.com/notes/009).

While alive a customer buys at rate lambda ~ Gamma(r, alpha); the lifetime is exponential with rate
mu ~ Gamma(s, beta). Time is measured from the first purchase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import expit, gammaln, hyp2f1  # type: ignore[import-untyped]

from patron.clv.schemas import FloatArray, ModelFit, ParetoNbdParams, maximise_log_likelihood
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


def _log_tail(r: float, alpha: float, s: float, beta: float, x: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
    """The log of 2F1(r+s+x, b'; r+s+x+1; |alpha-beta| / (m+t)) / (m+t)^(r+s+x), one of the two terms of A_0."""
    count, at = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    rsx = r + s + count
    top, shape = (alpha, s + 1.0) if alpha >= beta else (beta, r + count)
    hypergeometric = np.asarray(hyp2f1(rsx, shape, rsx + 1.0, abs(alpha - beta) / (top + at)), dtype=np.float64)
    return np.asarray(np.log(hypergeometric) - rsx * np.log(top + at), dtype=np.float64)


def _log_a0(log_at_t_x: FloatArray, log_at_age: FloatArray) -> FloatArray:
    r"""The log of A_0 from its two terms; the hypergeometric branch follows alpha >= beta so that z lies in [0, 1).

    .. math::
        A_0 = \frac{{}_2F_1(r+s+x, b'; r+s+x+1; \frac{|\alpha-\beta|}{m+t_x})}{(m+t_x)^{r+s+x}}
            - \frac{{}_2F_1(r+s+x, b'; r+s+x+1; \frac{|\alpha-\beta|}{m+T})}{(m+T)^{r+s+x}}

    with (m, b') = (alpha, s+1) if alpha >= beta, else (beta, r+x). A_0 = 0 (ln A_0 = -inf) when t_x = T.
    """
    ratio = np.exp(np.minimum(log_at_age - log_at_t_x, 0.0))  # <= 1 in exact arithmetic
    with np.errstate(divide="ignore"):  # ratio == 1 exactly when t_x == T: A_0 = 0 is intended
        return np.asarray(log_at_t_x + np.log1p(-ratio))


def _timing_terms(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: FloatArray,
    age: FloatArray,
    log_a0: FloatArray,
) -> FloatArray:
    """ln[(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A_0]."""
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    return np.asarray(np.logaddexp(alive, np.log(s) - np.log(r + s + x) + log_a0))


def _count_terms(r: float, alpha: float, s: float, beta: float, x: FloatArray) -> FloatArray:
    return np.asarray(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta))


def _per_customer_log_a0(params: ParetoNbdParams, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    return _log_a0(_log_tail(r, alpha, s, beta, x, t_x), _log_tail(r, alpha, s, beta, x, age))


def log_likelihood(
    params: ParetoNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""Per-customer log-likelihood (Fader & Hardie 2005 note).

    .. math::
        L(r, \alpha, s, \beta \mid x, t_x, T) = \frac{\Gamma(r+x)\,\alpha^r \beta^s}{\Gamma(r)}
            \left[\frac{1}{(\alpha+T)^{r+x}(\beta+T)^s} + \frac{s}{r+s+x} A_0\right]
    """
    x, t_x, age = _floats(frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_a0 = _per_customer_log_a0(params, x, t_x, age)
    return _count_terms(r, alpha, s, beta, x) + _timing_terms(r, alpha, s, beta, x, age, log_a0)


def _objective(columns: Sequence[FloatArray], weights: FloatArray) -> Callable[[FloatArray], float]:
    """Weighted mean negative log-likelihood.

    Terms in x alone are evaluated once per distinct x, and the t_x term of A_0 once for all one-time buyers
    (x = 0 and t_x = 0): the hypergeometric function is most of the cost.
    """
    x, t_x, age = columns
    counts, index = np.unique(x, return_inverse=True)
    count_weights = np.bincount(index, weights=weights)
    repeat = x > 0
    x_repeat, t_x_repeat = x[repeat], t_x[repeat]

    def negative_mean(theta: FloatArray) -> float:
        r, alpha, s, beta = (float(v) for v in np.exp(theta))
        log_at_t_x = np.full_like(x, float(_log_tail(r, alpha, s, beta, 0.0, 0.0)))
        log_at_t_x[repeat] = _log_tail(r, alpha, s, beta, x_repeat, t_x_repeat)
        log_a0 = _log_a0(log_at_t_x, _log_tail(r, alpha, s, beta, x, age))
        by_timing = _timing_terms(r, alpha, s, beta, x, age, log_a0)
        return -float(count_weights @ _count_terms(r, alpha, s, beta, counts) + weights @ by_timing)

    return negative_mean


def fit(summary: CustomerSummary, *, initial: ParetoNbdParams | None = None) -> ModelFit[ParetoNbdParams]:
    """Maximum-likelihood Pareto/NBD fit (L-BFGS-B on log-parameters, finite-difference gradient)."""
    summary.require_repeat_customers()
    start = _START if initial is None else (initial.r, initial.alpha, initial.s, initial.beta)
    columns = [summary.frequency, summary.recency, summary.T]
    values, ll, convergence = maximise_log_likelihood(_objective, start, columns, jac=False)
    r, alpha, s, beta = (float(v) for v in values)
    return ModelFit("pareto", ParetoNbdParams(r, alpha, s, beta), ll, len(summary), convergence)


def probability_alive(
    params: ParetoNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""P(alive at T | x, t_x, T) (Fader & Hardie 2005 note).

    .. math::
        P = \left[1 + \frac{s}{r+s+x} (\alpha+T)^{r+x} (\beta+T)^s A_0\right]^{-1}
    """
    x, t_x, age = _floats(frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_odds = (
        np.log(s)
        - np.log(r + s + x)
        + (r + x) * np.log(alpha + age)
        + s * np.log(beta + age)
        + _per_customer_log_a0(params, x, t_x, age)
    )
    return np.asarray(expit(-log_odds), dtype=np.float64)


def _survival_integral(s: float, horizon: FloatArray, beta_age: FloatArray) -> FloatArray:
    """[1 - ((beta+T)/(beta+T+t))^(s-1)] / (s-1), continuous through s = 1 (where it is ln((beta+T+t)/(beta+T)))."""
    log_ratio = np.log(beta_age / (beta_age + horizon))
    if abs(s - 1.0) < 1e-10:
        return np.asarray(-log_ratio, dtype=np.float64)
    return np.asarray(-np.expm1((s - 1.0) * log_ratio) / (s - 1.0), dtype=np.float64)


def conditional_expected_purchases(
    params: ParetoNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    r"""Expected purchases in (T, T+t] given (x, t_x, T) (Schmittlein et al. 1987; Fader & Hardie note).

    .. math::
        E[Y(t) \mid x, t_x, T] = \frac{(r+x)(\beta+T)}{(\alpha+T)(s-1)}
            \left[1 - \left(\frac{\beta+T}{\beta+T+t}\right)^{s-1}\right] P(\text{alive})
    """
    horizon, x, t_x, age = _floats(t, frequency, recency, T)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    rate = (r + x) / (alpha + age) * (beta + age)
    return rate * _survival_integral(s, horizon, beta + age) * probability_alive(params, x, t_x, age)


def expected_purchases(params: ParetoNbdParams, t: npt.ArrayLike) -> FloatArray:
    r"""Unconditional E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (Schmittlein et al. 1987)."""
    horizon = np.asarray(t, dtype=np.float64)
    rate = params.r / params.alpha * params.beta
    return rate * _survival_integral(params.s, horizon, np.full_like(horizon, params.beta))


def simulate(params: ParetoNbdParams, T: npt.ArrayLike, rng: np.random.Generator) -> CustomerSummary:  # noqa: N803
    """Draw customers from the Pareto/NBD story, one per entry of ``T``.

    A customer is alive for min(lifetime, T); n ~ Poisson(lambda * that) purchases fall uniformly in it, so the
    last one sits at the window times Beta(n, 1).
    """
    age = np.asarray(T, dtype=np.float64).reshape(-1)
    rate = rng.gamma(params.r, 1.0 / params.alpha, size=age.shape)
    death_rate = rng.gamma(params.s, 1.0 / params.beta, size=age.shape)
    window = np.minimum(rng.exponential(1.0, size=age.shape) / np.maximum(death_rate, 1e-300), age)
    x = rng.poisson(rate * window)
    t_x = np.where(x > 0, window * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return CustomerSummary(x.astype(np.float64), t_x, age)
