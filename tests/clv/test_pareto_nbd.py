"""Pareto/NBD against the published CDNOW fit, the integral form of A_0, and simulated customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln

from patron.clv import pareto_nbd
from patron.clv.schemas import ParetoNbdParams
from patron.clv.summary import CustomerSummary
from patron.errors import ValidationError
from tests.conftest import shared_data

PUBLISHED = ParetoNbdParams(r=0.553, alpha=10.578, s=0.606, beta=11.669)


@pytest.fixture(scope="module")
def cdnow() -> CustomerSummary:
    return CustomerSummary.from_frame(pd.read_csv(shared_data("cdnow/cdnow_customers_summary.csv")))


def _significant(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def test_cdnow_fit_reproduces_the_published_parameters(cdnow: CustomerSummary) -> None:
    """Schmittlein, Morrison & Colombo (1987) model as fitted in Fader, Hardie & Lee (2005) on CDNOW (weeks).

    Published: r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669 (3 significant digits checked).
    """
    fit = pareto_nbd.fit(cdnow)

    for name in ("r", "alpha", "s", "beta"):
        assert _significant(getattr(fit.params, name)) == _significant(getattr(PUBLISHED, name)), name
    assert fit.convergence.converged
    # the published estimates sit on the same flat optimum of this likelihood
    at_published = pareto_nbd.log_likelihood(PUBLISHED, cdnow.frequency, cdnow.recency, cdnow.T).sum()
    assert fit.log_likelihood - 0.01 < at_published <= fit.log_likelihood


def _by_quadrature(params: ParetoNbdParams, x: float, t_x: float, T: float) -> float:  # noqa: N803
    """Fader & Hardie (2005) note, before the hypergeometric step: A_0 as an integral over death times."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    integral, _ = integrate.quad(lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), t_x, T, epsabs=0)
    head = np.exp(gammaln(r + x) - gammaln(r)) * alpha**r * beta**s
    return float(np.log(head * ((alpha + T) ** -(r + x) * (beta + T) ** -s + s * integral)))


@pytest.mark.parametrize(
    "params",
    [PUBLISHED, ParetoNbdParams(r=0.553, alpha=12.0, s=0.606, beta=3.0), ParetoNbdParams(2.0, 5.0, 1.0, 5.0)],
    ids=["alpha<beta", "alpha>beta", "alpha=beta"],
)
@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 20.0, 35.0), (29, 38.43, 38.86)])
def test_likelihood_matches_the_integral_form_on_both_hypergeometric_branches(
    params: ParetoNbdParams,
    x: int,
    t_x: float,
    T: float,  # noqa: N803
) -> None:
    """Fader & Hardie (2005), "A note on deriving the Pareto/NBD model": closed form against the integral."""
    assert float(pareto_nbd.log_likelihood(params, x, t_x, T)) == pytest.approx(
        _by_quadrature(params, x, t_x, T), abs=1e-9
    )


def test_a_last_purchase_at_the_end_of_observation_means_alive() -> None:
    """A_0 = 0 when t_x = T (no death between the last purchase and T): P(alive) = 1, no warning."""
    assert float(pareto_nbd.probability_alive(PUBLISHED, 3, 38.86, 38.86)) == pytest.approx(1.0)
    assert np.isfinite(pareto_nbd.log_likelihood(PUBLISHED, [3, 0], [38.86, 0.0], [38.86, 0.0])).all()


def test_probability_alive_and_conditional_expectation_move_as_the_model_says() -> None:
    """Schmittlein et al. (1987): silence since the last purchase lowers P(alive) and the expected purchases."""
    p_recent, p_silent = pareto_nbd.probability_alive(PUBLISHED, [2, 2], [30.43, 5.0], [38.86, 38.86])
    e_recent, e_silent = pareto_nbd.conditional_expected_purchases(PUBLISHED, 39, [2, 2], [30.43, 5.0], [38.86] * 2)

    assert 0 < p_silent < p_recent < 1
    assert 0 < e_silent < e_recent


def test_the_expectation_is_continuous_through_s_equal_to_one() -> None:
    """The (s - 1) in the denominator has a finite limit; s = 1 must not divide by zero."""
    at_one = pareto_nbd.conditional_expected_purchases(ParetoNbdParams(0.5, 10.0, 1.0, 12.0), 39, 2, 30.0, 38.0)
    nearby = pareto_nbd.conditional_expected_purchases(ParetoNbdParams(0.5, 10.0, 1.0 + 1e-7, 12.0), 39, 2, 30.0, 38.0)

    assert float(at_one) == pytest.approx(float(nearby), rel=1e-6)


def test_simulated_purchases_match_the_unconditional_expectation() -> None:
    """Schmittlein et al. (1987), E[X(t)], against the mean of 200,000 simulated customers."""
    rng = np.random.default_rng(11)
    simulated = pareto_nbd.simulate(PUBLISHED, np.full(200_000, 39.0), rng)

    assert simulated.frequency.mean() == pytest.approx(float(pareto_nbd.expected_purchases(PUBLISHED, 39.0)), abs=0.02)


def test_parameters_are_recovered_from_simulated_customers() -> None:
    """Parameter recovery: 20,000 customers observed 26 to 78 weeks, CDNOW-like parameters.

    The death process is weakly identified on such windows: over repeated simulations the estimates vary by
    2.3% (r), 2.4% (alpha), 6.7% (s) and 12% (beta); tolerances are about four of those standard deviations.
    The likelihood-ratio statistic against the truth stays below the chi-square(4) 0.9995 point.
    """
    truth = ParetoNbdParams(r=0.55, alpha=10.5, s=0.6, beta=11.5)
    rng = np.random.default_rng(20_000)
    simulated = pareto_nbd.simulate(truth, rng.uniform(26, 78, 20_000), rng)

    fit = pareto_nbd.fit(simulated)

    for name, rel in {"r": 0.10, "alpha": 0.10, "s": 0.27, "beta": 0.5}.items():
        assert getattr(fit.params, name) == pytest.approx(getattr(truth, name), rel=rel), name
    at_truth = pareto_nbd.log_likelihood(truth, simulated.frequency, simulated.recency, simulated.T).sum()
    assert 0 <= 2 * (fit.log_likelihood - at_truth) < 20


def test_a_summary_without_repeat_purchases_is_rejected_naming_frequency() -> None:
    with pytest.raises(ValidationError) as raised:
        pareto_nbd.fit(CustomerSummary([0, 0], [0, 0], [5, 6]))

    assert raised.value.field == "frequency"
