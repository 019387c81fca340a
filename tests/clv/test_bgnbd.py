"""BG/NBD against Fader, Hardie & Lee (2005) on CDNOW, an independent integral, and simulated customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.optimize import check_grad

from patron.clv import bgnbd, schemas
from patron.clv.schemas import BgNbdParams
from patron.clv.summary import CustomerSummary
from patron.errors import ValidationError
from tests.conftest import shared_data

PUBLISHED = BgNbdParams(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258)


@pytest.fixture(scope="module")
def cdnow() -> CustomerSummary:
    return CustomerSummary.from_frame(pd.read_csv(shared_data("cdnow/cdnow_customers_summary.csv")))


def _significant(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def test_cdnow_fit_reproduces_the_published_parameters(cdnow: CustomerSummary) -> None:
    """Fader, Hardie & Lee (2005), "Counting your customers" the easy way, CDNOW sample in weeks.

    Published: r = 0.2426, alpha = 4.4135, a = 0.7929, b = 2.4258 (lifetimes' documentation), LL = -9582.4.
    """
    fit = bgnbd.fit(cdnow)

    for name in ("r", "alpha", "a", "b"):
        assert _significant(getattr(fit.params, name)) == _significant(getattr(PUBLISHED, name)), name
        assert getattr(fit.params, name) == pytest.approx(getattr(PUBLISHED, name), abs=5e-5), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fit.customers == 2357 and fit.convergence.converged


def test_cdnow_conditional_expectation_for_the_papers_example_customer(cdnow: CustomerSummary) -> None:
    """Fader, Hardie & Lee (2005), eq. 10: x = 2, t_x = 30.43, T = 38.86 buys 1.226 times in the next 39 weeks."""
    fit = bgnbd.fit(cdnow)

    expected = bgnbd.conditional_expected_purchases(fit.params, 39, 2, 30.43, 38.86)

    assert float(expected) == pytest.approx(1.226, abs=5e-4)


def test_total_log_likelihood_at_the_published_parameters(cdnow: CustomerSummary) -> None:
    """Fader, Hardie & Lee (2005): the log-likelihood at the published estimates is -9582.4."""
    total = bgnbd.log_likelihood(PUBLISHED, cdnow.frequency, cdnow.recency, cdnow.T).sum()

    assert total == pytest.approx(-9582.4, abs=0.05)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 10.0), (1, 3.0, 10.0), (4, 9.5, 12.0)])
def test_likelihood_equals_the_integral_over_rate_and_dropout_probability(x: int, t_x: float, T: float) -> None:  # noqa: N803
    """Fader, Hardie & Lee (2005): the individual likelihood integrated numerically over Gamma(r, alpha), Beta(a, b)."""
    params = BgNbdParams(r=2.0, alpha=3.0, a=2.0, b=3.0)

    def individual(p: float, lam: float) -> float:
        alive = (1 - p) ** x * lam**x * np.exp(-lam * T)
        gone = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
        density = stats.gamma.pdf(lam, params.r, scale=1 / params.alpha) * stats.beta.pdf(p, params.a, params.b)
        return float((alive + gone) * density)

    numeric, _ = integrate.dblquad(individual, 0, 60, 0, 1, epsabs=1e-13)

    assert float(bgnbd.log_likelihood(params, x, t_x, T)) == pytest.approx(np.log(numeric), abs=1e-7)


def test_analytic_gradient_matches_finite_differences(cdnow: CustomerSummary) -> None:
    weights = np.full(len(cdnow), 1 / len(cdnow))
    objective = bgnbd._objective([cdnow.frequency, cdnow.recency, cdnow.T], weights)

    error = check_grad(lambda t: objective(t)[0], lambda t: objective(t)[1], np.log([0.3, 4.0, 0.7, 2.5]))

    assert error < 1e-6


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    """Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model" (Hardie's note 021)."""
    p_new = bgnbd.probability_alive(PUBLISHED, 0, 0.0, 30.0)
    p_recent, p_silent = bgnbd.probability_alive(PUBLISHED, [3, 3], [29.0, 5.0], [30.0, 30.0])
    by_hand = 1 / (1 + 0.7929 / (2.4258 + 2) * ((4.4135 + 30) / (4.4135 + 5)) ** (0.2426 + 3))

    assert float(p_new) == 1.0
    assert 0 < p_silent < p_recent < 1
    assert p_silent == pytest.approx(by_hand, rel=1e-12)


def test_simulated_purchases_match_the_unconditional_expectation() -> None:
    """Fader, Hardie & Lee (2005), eq. 9, E[X(t)], against the mean of 200,000 simulated customers."""
    rng = np.random.default_rng(7)
    simulated = bgnbd.simulate(PUBLISHED, np.full(200_000, 39.0), rng)

    expected = float(bgnbd.expected_purchases(PUBLISHED, 39.0))

    assert simulated.frequency.mean() == pytest.approx(expected, abs=0.02)
    assert np.all(simulated.recency <= simulated.T) and np.all(simulated.recency[simulated.frequency == 0] == 0)


def test_parameters_are_recovered_from_simulated_customers() -> None:
    """Parameter recovery (the lifetimes / PyMC-Marketing habit): 20,000 customers observed 26 to 78 weeks.

    Tolerances are about four standard deviations of the estimates over repeated simulations (r 1%, alpha 1.3%,
    a 2.1%, b 2.6%); the likelihood-ratio statistic against the truth stays below the chi-square(4) 0.9995 point.
    """
    truth = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
    rng = np.random.default_rng(20_000)
    simulated = bgnbd.simulate(truth, rng.uniform(26, 78, 20_000), rng)

    fit = bgnbd.fit(simulated)

    tolerance = {"r": 0.05, "alpha": 0.06, "a": 0.10, "b": 0.12}
    for name, rel in tolerance.items():
        assert getattr(fit.params, name) == pytest.approx(getattr(truth, name), rel=rel), name
    at_truth = bgnbd.log_likelihood(truth, simulated.frequency, simulated.recency, simulated.T).sum()
    assert 0 <= 2 * (fit.log_likelihood - at_truth) < 20


def test_large_fits_take_the_warm_start_path_to_the_same_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above 100,000 customers a subsample fit seeds the full fit; the optimum must not move."""
    rng = np.random.default_rng(3)
    simulated = bgnbd.simulate(PUBLISHED, rng.uniform(27, 39, 150_000), rng)

    warm = bgnbd.fit(simulated)
    monkeypatch.setattr(schemas, "_WARM_START_ROWS", 10**9)
    direct = bgnbd.fit(simulated)

    assert warm.convergence.converged and direct.convergence.converged
    for name in ("r", "alpha", "a", "b"):
        assert getattr(warm.params, name) == pytest.approx(getattr(direct.params, name), rel=1e-4), name
    assert warm.log_likelihood == pytest.approx(direct.log_likelihood, abs=1e-3)


def test_a_summary_without_repeat_purchases_is_rejected_naming_frequency() -> None:
    summary = CustomerSummary(np.zeros(5), np.zeros(5), np.full(5, 10.0))

    with pytest.raises(ValidationError) as raised:
        bgnbd.fit(summary)

    assert raised.value.field == "frequency"
