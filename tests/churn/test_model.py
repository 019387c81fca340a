"""The additive boosted model on simulated members whose churn depends on known features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from patron.churn.model import fit_churn_model
from patron.errors import ValidationError

NAMES = ("recency_days", "noise", "purchase_days", "mean_interval")
CREDIT = {"mean_interval": "purchase_days"}


def simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Churn log-odds rise with recency and fall with purchase days; the noise column plays no part."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 365, n)
    noise = rng.normal(0, 1, n)
    days = rng.integers(1, 11, n).astype(float)
    interval = np.where(days > 1, rng.uniform(5, 90, n), np.nan)
    truth = expit(-1.0 + recency / 60 - 0.4 * days)
    churned = (rng.random(n) < truth).astype(int)
    return np.column_stack([recency, noise, days, interval]), churned, truth


def test_the_fitted_model_ranks_and_predicts_like_the_truth() -> None:
    x, y, _ = simulate(20_000, seed=1)
    model = fit_churn_model(x, y, NAMES, missing_credit=CREDIT)
    fresh, outcome, truth = simulate(20_000, seed=2)

    risk = model.risk(fresh)

    assert roc_auc_score(outcome, risk) > roc_auc_score(outcome, truth) - 0.01
    assert np.mean(np.abs(risk - truth)) < 0.03  # close to the true probabilities, not only in rank
    assert risk.mean() == pytest.approx(outcome.mean(), abs=0.02)


def test_tables_reproduce_the_trees_and_contributions_add_up() -> None:
    x, y, _ = simulate(5000, seed=3)
    model = fit_churn_model(x, y, NAMES, missing_credit=CREDIT)
    codes = model.codes(x).astype(float)
    codes[np.isnan(x)] = np.nan

    direct = model.classifier.decision_function(codes)
    push = model.contributions(x)

    assert model.log_odds(x) == pytest.approx(direct, abs=1e-9)
    assert push.sum(axis=1) == pytest.approx(model.log_odds(x) - model.log_odds(x).mean(), abs=1e-9)
    single = np.isnan(x[:, 3])
    assert np.all(push[single, 3] == 0)  # a missing interval is credited to purchase_days


def test_reasons_name_the_planted_drivers_and_respect_the_monotone_directions() -> None:
    x, y, _ = simulate(20_000, seed=4)
    model = fit_churn_model(x, y, NAMES, missing_credit=CREDIT)
    names = model.reason_names(x)
    risk = model.risk(x)

    lapsed = np.argmax(x[:, 0] - 100 * (x[:, 2] > 3))  # long inactive, few purchase days
    assert names[lapsed][0] == "recency_days"
    assert set(names[lapsed]) <= {"recency_days", "purchase_days"}
    assert names[int(np.argmin(risk))] == []  # the safest member has nothing pushing the risk up
    first = np.array([r[0] if r else "" for r in names])
    assert np.mean(first == "noise") < 0.02
    assert not np.any(first[risk > np.quantile(risk, 0.7)] == "noise")  # never for the members at risk
    grid = np.tile(np.nanmedian(x, axis=0), (50, 1))
    grid[:, 0] = np.linspace(0, 365, 50)
    assert np.all(np.diff(model.risk(grid)) >= 0)  # more days since the last purchase never lowers the risk


@pytest.mark.parametrize("churners", [0, 1, 100])
def test_labels_without_two_members_of_each_class_are_refused(churners: int) -> None:
    x, _, _ = simulate(100, seed=5)
    with pytest.raises(ValidationError) as caught:
        fit_churn_model(x, np.arange(100) < churners, NAMES)
    assert caught.value.field == "churned"


def test_a_class_of_two_still_fits_with_one_held_out_for_early_stopping() -> None:
    x, _, _ = simulate(200, seed=6)
    model = fit_churn_model(x, np.arange(200) < 2, NAMES)
    assert np.all(np.isfinite(model.risk(x)))
