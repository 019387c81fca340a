"""BG/NBD, Pareto/NBD and Gamma-Gamma against lifetimes 0.11.3 on the CDNOW sample (2,357 customers, weeks).

Both libraries fit the same data with ``penalizer_coef=0``; the tests compare the parameters, the per-customer
P(alive) and the conditional expected purchases in the next 39 weeks, and the expected average spend.

What the tolerances rest on (measured with lifetimes 0.11.3, scipy as locked):

- Given *identical* parameters, Patron's and lifetimes' prediction functions agree to about 1e-13, so any gap
  between the two libraries' predictions comes from where their optimisers stop on a flat likelihood.
- BG/NBD: lifetimes stops BFGS at gtol 1e-7 on its time-scaled mean likelihood (tighter fails with "precision
  loss"); the parameters differ by 5e-7 relative, the log-likelihoods by 1e-10, P(alive) by 6e-8 and E[Y(39)]
  by 9.7e-7. Patron's gradient at its optimum is several times smaller than lifetimes'.
- Pareto/NBD: lifetimes runs Nelder-Mead with tol 1e-4 by default (parameters 5e-5 relative apart, E[Y(39)]
  7e-5 apart). With tol 1e-12 the gap shrinks to 2e-6 relative, P(alive) 1e-7 and E[Y(39)] 2.3e-6, and both
  log-likelihoods agree to 1e-10; what remains is where Patron's finite-difference L-BFGS-B stops.
- Gamma-Gamma: the parameters agree to 4e-9 relative.

lifetimes warns (pandas, numpy and autograd deprecations); its calls are silenced here, not globally.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

from patron.clv import bgnbd, gamma_gamma, pareto_nbd
from patron.clv.schemas import BgNbdParams, GammaGammaParams, ParetoNbdParams
from patron.clv.summary import CustomerSummary
from tests.conftest import shared_data

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter  # type: ignore[import-untyped]

T = TypeVar("T")
HORIZON = 39  # weeks: the length of FHL's holdout period


def _quietly(call: Callable[[], T]) -> T:
    """Run a lifetimes call with its deprecation warnings silenced (pytest turns warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _max_relative_difference(ours: Any, theirs: pd.Series, names: tuple[str, ...]) -> float:
    return max(abs(float(getattr(ours, name)) / float(theirs[name]) - 1.0) for name in names)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(shared_data("cdnow/cdnow_customers_summary.csv"))


@pytest.fixture(scope="module")
def cdnow(frame: pd.DataFrame) -> CustomerSummary:
    return CustomerSummary.from_frame(frame)


def _columns(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return frame["frequency"], frame["recency"], frame["T"]


# --- BG/NBD -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bg_lifetimes(frame: pd.DataFrame) -> Any:
    return _quietly(lambda: BetaGeoFitter(penalizer_coef=0.0).fit(*_columns(frame)))


def test_bgnbd_parameters_equal_lifetimes(cdnow: CustomerSummary, bg_lifetimes: Any) -> None:
    fit = bgnbd.fit(cdnow)
    theirs = BgNbdParams(*(float(bg_lifetimes.params_[k]) for k in ("r", "alpha", "a", "b")))

    assert _max_relative_difference(fit.params, bg_lifetimes.params_, ("r", "alpha", "a", "b")) < 1e-4
    # Both sit on the optimum; Patron's is not the worse of the two.
    at_theirs = bgnbd.log_likelihood(theirs, cdnow.frequency, cdnow.recency, cdnow.T).sum()
    assert fit.log_likelihood >= at_theirs - 1e-6


def test_bgnbd_predictions_equal_lifetimes_at_identical_parameters(
    frame: pd.DataFrame, cdnow: CustomerSummary, bg_lifetimes: Any
) -> None:
    params = BgNbdParams(*(float(bg_lifetimes.params_[k]) for k in ("r", "alpha", "a", "b")))
    columns = _columns(frame)

    alive = _quietly(lambda: bg_lifetimes.conditional_probability_alive(*columns))
    expected = _quietly(lambda: bg_lifetimes.conditional_expected_number_of_purchases_up_to_time(HORIZON, *columns))

    ours_alive = bgnbd.probability_alive(params, cdnow.frequency, cdnow.recency, cdnow.T)
    ours_expected = bgnbd.conditional_expected_purchases(params, HORIZON, cdnow.frequency, cdnow.recency, cdnow.T)
    np.testing.assert_allclose(ours_alive, np.asarray(alive, dtype=np.float64), rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours_expected, np.asarray(expected, dtype=np.float64), rtol=0, atol=1e-10)


def test_bgnbd_predictions_of_each_fit_agree(frame: pd.DataFrame, cdnow: CustomerSummary, bg_lifetimes: Any) -> None:
    """Each library's own fit: P(alive) within 1e-6; E[Y(39)] within 2e-6 (9.7e-7 observed, see the docstring)."""
    fit = bgnbd.fit(cdnow)
    columns = _columns(frame)

    alive = _quietly(lambda: bg_lifetimes.conditional_probability_alive(*columns))
    expected = _quietly(lambda: bg_lifetimes.conditional_expected_number_of_purchases_up_to_time(HORIZON, *columns))

    ours_alive = bgnbd.probability_alive(fit.params, cdnow.frequency, cdnow.recency, cdnow.T)
    ours_expected = bgnbd.conditional_expected_purchases(fit.params, HORIZON, cdnow.frequency, cdnow.recency, cdnow.T)
    np.testing.assert_allclose(ours_alive, np.asarray(alive, dtype=np.float64), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_expected, np.asarray(expected, dtype=np.float64), rtol=0, atol=2e-6)


# --- Pareto/NBD ---------------------------------------------------------------------------------------------------

PARETO = ("r", "alpha", "s", "beta")


def _pareto_lifetimes(frame: pd.DataFrame, **options: Any) -> Any:
    # lifetimes draws its Nelder-Mead start from the global numpy generator; its centre makes the fit repeatable.
    return _quietly(
        lambda: ParetoNBDFitter(penalizer_coef=0.0).fit(*_columns(frame), initial_params=np.ones(4), **options)
    )


@pytest.fixture(scope="module")
def pareto_fit(cdnow: CustomerSummary) -> ParetoNbdParams:
    return pareto_nbd.fit(cdnow).params


@pytest.fixture(scope="module")
def pareto_lifetimes_tight(frame: pd.DataFrame) -> Any:
    """Nelder-Mead run to tol 1e-12 instead of lifetimes' default 1e-4 (about 1 s)."""
    return _pareto_lifetimes(frame, tol=1e-12, maxiter=100_000)


def test_pareto_parameters_equal_lifetimes_with_its_default_tolerance(
    frame: pd.DataFrame, pareto_fit: ParetoNbdParams
) -> None:
    theirs = _pareto_lifetimes(frame)

    assert _max_relative_difference(pareto_fit, theirs.params_, PARETO) < 1e-3


def test_pareto_parameters_and_likelihood_equal_lifetimes_run_to_convergence(
    cdnow: CustomerSummary, pareto_fit: ParetoNbdParams, pareto_lifetimes_tight: Any
) -> None:
    theirs = ParetoNbdParams(*(float(pareto_lifetimes_tight.params_[k]) for k in PARETO))

    assert _max_relative_difference(pareto_fit, pareto_lifetimes_tight.params_, PARETO) < 1e-5
    ours_ll = pareto_nbd.log_likelihood(pareto_fit, cdnow.frequency, cdnow.recency, cdnow.T).sum()
    their_ll = pareto_nbd.log_likelihood(theirs, cdnow.frequency, cdnow.recency, cdnow.T).sum()
    assert ours_ll == pytest.approx(their_ll, abs=1e-6)


def test_pareto_predictions_equal_lifetimes_at_identical_parameters(
    frame: pd.DataFrame, cdnow: CustomerSummary, pareto_lifetimes_tight: Any
) -> None:
    fitter = pareto_lifetimes_tight
    params = ParetoNbdParams(*(float(fitter.params_[k]) for k in PARETO))
    columns = _columns(frame)

    alive = _quietly(lambda: fitter.conditional_probability_alive(*columns))
    expected = _quietly(lambda: fitter.conditional_expected_number_of_purchases_up_to_time(HORIZON, *columns))

    ours_alive = pareto_nbd.probability_alive(params, cdnow.frequency, cdnow.recency, cdnow.T)
    ours_expected = pareto_nbd.conditional_expected_purchases(params, HORIZON, cdnow.frequency, cdnow.recency, cdnow.T)
    np.testing.assert_allclose(ours_alive, np.asarray(alive, dtype=np.float64), rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours_expected, np.asarray(expected, dtype=np.float64), rtol=0, atol=1e-10)


def test_pareto_predictions_of_each_fit_agree(
    frame: pd.DataFrame, cdnow: CustomerSummary, pareto_fit: ParetoNbdParams, pareto_lifetimes_tight: Any
) -> None:
    """P(alive) within 1e-6 (1.1e-7 observed); E[Y(39)] within 5e-6 (2.3e-6 observed, see the docstring)."""
    fitter = pareto_lifetimes_tight
    columns = _columns(frame)

    alive = _quietly(lambda: fitter.conditional_probability_alive(*columns))
    expected = _quietly(lambda: fitter.conditional_expected_number_of_purchases_up_to_time(HORIZON, *columns))

    ours_alive = pareto_nbd.probability_alive(pareto_fit, cdnow.frequency, cdnow.recency, cdnow.T)
    ours_expected = pareto_nbd.conditional_expected_purchases(
        pareto_fit, HORIZON, cdnow.frequency, cdnow.recency, cdnow.T
    )
    np.testing.assert_allclose(ours_alive, np.asarray(alive, dtype=np.float64), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_expected, np.asarray(expected, dtype=np.float64), rtol=0, atol=5e-6)


# --- Gamma-Gamma --------------------------------------------------------------------------------------------------


def test_gamma_gamma_parameters_and_spend_equal_lifetimes() -> None:
    """The 946 repeat customers of Hardie's summary with zbar (lifetimes' ``..._with_monetary_value`` data)."""
    spend = pd.read_csv(shared_data("cdnow/cdnow_customers_summary_with_transactions.csv"))
    repeat = spend[spend["x"] > 0]
    fit = gamma_gamma.fit(CustomerSummary.from_frame(spend, monetary=True))

    theirs = _quietly(lambda: GammaGammaFitter(penalizer_coef=0.0).fit(repeat["x"], repeat["zbar"]))
    their_spend = _quietly(lambda: theirs.conditional_expected_average_profit(repeat["x"], repeat["zbar"]))

    assert fit.customers == len(repeat) == 946
    assert _max_relative_difference(fit.params, theirs.params_, ("p", "q", "v")) < 1e-6
    same = GammaGammaParams(*(float(theirs.params_[k]) for k in ("p", "q", "v")))
    ours_same = gamma_gamma.conditional_expected_average_spend(same, repeat["x"], repeat["zbar"])
    ours_fit = gamma_gamma.conditional_expected_average_spend(fit.params, repeat["x"], repeat["zbar"])
    np.testing.assert_allclose(ours_same, np.asarray(their_spend, dtype=np.float64), rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours_fit, np.asarray(their_spend, dtype=np.float64), rtol=1e-6, atol=0)
