"""Ranking and calibration metrics against scikit-learn and brute force."""

from __future__ import annotations

from itertools import pairwise, permutations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from patron.churn.metrics import brier_score, calibration_table, precision_at_k, roc_auc, scored


def test_auc_equals_scikit_learn_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    churned = rng.random(5000) < 0.3
    score = np.round(rng.normal(churned * 0.8, 1.0), 1)  # coarse: many ties across classes

    assert roc_auc(churned, score) == pytest.approx(roc_auc_score(churned, score), abs=1e-12)


def test_auc_of_a_single_class_is_none() -> None:
    assert roc_auc([1, 1, 1], [0.1, 0.5, 0.9]) is None


def test_precision_at_k_shares_the_places_among_ties() -> None:
    churned = np.array([1, 1, 0, 0, 1])
    score = np.array([5.0, 4.0, 4.0, 4.0, 1.0])
    # Brute force: the mean precision over every order of the three members tied at 4.
    tied = [1, 2, 3]
    precisions = []
    for order in permutations(tied):
        top = [0, order[0]]
        precisions.append(churned[top].mean())

    assert precision_at_k(churned, score, 2) == pytest.approx(np.mean(precisions))
    assert precision_at_k(churned, score, 2) == pytest.approx(2 / 3)
    assert precision_at_k(churned, score, 1) == 1.0
    assert precision_at_k(churned, score, 6) is None


def test_brier_and_calibration_deciles() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(1003)
    churned = rng.random(1003) < p

    table = calibration_table(churned, p)

    assert brier_score(churned, p) == pytest.approx(brier_score_loss(churned, p))
    assert len(table) == 10 and sum(b.members for b in table) == 1003
    order = np.sort(p)
    assert table[0].lower == order[0] and table[-1].upper == order[-1]
    assert all(a.upper <= b.lower for a, b in pairwise(table))
    for b in table:  # drawn from p itself, so each decile's observed rate is near its mean prediction
        assert abs(b.observed_rate - b.mean_predicted) < 0.2


def test_a_score_that_is_not_a_probability_has_no_brier() -> None:
    metrics = scored([1, 0, 1, 0], [30.0, 2.0, 50.0, 1.0], probability=False)

    assert metrics.auc == 1.0 and metrics.brier is None and metrics.calibration == ()
    assert metrics.members == 4 and metrics.churn_rate == 0.5
