"""CTR and conversion per variant, checked against scipy's own implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from patron.recs.comparison import Proportion, VariantStats, compare_variants, difference, wilson


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (120, 4_000), (2_517, 5_000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy_binomtest(k: int, n: int, confidence: float) -> None:
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")

    got = wilson(Proportion(k, n), confidence)

    assert got.rate == pytest.approx(k / n)
    assert got.low == pytest.approx(expected.low, abs=1e-12)
    assert got.high == pytest.approx(expected.high, abs=1e-12)


@given(st.integers(0, 500), st.integers(1, 500), st.integers(0, 500), st.integers(1, 500))
def test_the_z_test_p_value_equals_the_uncorrected_chi_square_test(a: int, n0: int, b: int, n1: int) -> None:
    a, b = min(a, n0), min(b, n1)
    table = np.array([[a, n0 - a], [b, n1 - b]])
    result = difference(Proportion(a, n0), Proportion(b, n1))
    if (a + b) in (0, n0 + n1):
        assert result.reason == "no variance"
        return

    chi2 = stats.chi2_contingency(table, correction=False)

    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-6, abs=1e-12)
    assert result.z is not None and result.z**2 == pytest.approx(chi2.statistic, rel=1e-6)


def test_the_difference_interval_is_the_unpooled_wald_interval() -> None:
    control, treatment = Proportion(200, 5_000), Proportion(260, 5_000)
    se = math.sqrt(0.052 * 0.948 / 5_000 + 0.04 * 0.96 / 5_000)
    z = stats.norm.ppf(0.975)

    result = difference(control, treatment)

    assert result.difference == pytest.approx(0.012)
    assert result.low == pytest.approx(0.012 - z * se)
    assert result.high == pytest.approx(0.012 + z * se)
    assert result.p_value is not None and result.p_value < 0.01


def test_no_trials_is_a_result_with_a_reason_not_an_error() -> None:
    assert wilson(Proportion(0, 0)).reason == "no trials"
    assert difference(Proportion(0, 0), Proportion(1, 2)).reason == "no trials"


def test_sufficient_statistics_add_up() -> None:
    a = VariantStats("control", units=3, impressions=10, clicks=2, purchases=1, converted_units=1, revenue=5.5)
    b = VariantStats("control", units=2, impressions=5, clicks=1, purchases=2, converted_units=1, revenue=4.5)

    total = a + b

    assert total == VariantStats("control", 5, 15, 3, 3, 2, 10.0)
    assert Proportion(1, 2) + Proportion(3, 4) == Proportion(4, 6)


def test_compare_variants_reports_each_treatment_against_the_control() -> None:
    control = VariantStats("control", units=1_000, impressions=8_000, clicks=400, converted_units=50)
    treatment = VariantStats("treatment", units=1_000, impressions=8_000, clicks=480, converted_units=70)

    report = compare_variants("home", [control, treatment], control="control")

    first, second = report.variants
    assert first.is_control and first.ctr.vs_control is None
    assert first.ctr.rate.rate == pytest.approx(0.05)
    assert second.conversion.rate.rate == pytest.approx(0.07)
    assert second.ctr.vs_control is not None and second.ctr.vs_control.difference == pytest.approx(0.01)
    expected = stats.chi2_contingency(np.array([[400, 7_600], [480, 7_520]]), correction=False).pvalue
    assert second.ctr.vs_control.p_value == pytest.approx(expected, rel=1e-6)
