"""Customer lifetime value: probability models of repeat buying and spend.

- ``bgnbd``: BG/NBD (Fader, Hardie & Lee 2005), purchases and P(alive);
- ``pareto_nbd``: Pareto/NBD (Schmittlein, Morrison & Colombo 1987), purchases and P(alive);
- ``gamma_gamma``: Gamma-Gamma spend (Fader, Hardie & Lee 2005) and discounted CLV;
- ``summary``: frequency / recency / T from transactions, calibration/holdout split and evaluation;
- ``schemas``: fitted parameters and fit records (frozen dataclasses).

Every model is a set of pure functions over a validated ``CustomerSummary``; bad input raises
``patron.errors.ValidationError`` naming the field.
"""

from __future__ import annotations

from patron.clv import bgnbd, gamma_gamma, pareto_nbd
from patron.clv.schemas import (
    BgNbdParams,
    Convergence,
    GammaGammaParams,
    HoldoutBucket,
    HoldoutEvaluation,
    ModelFit,
    ParetoNbdParams,
)
from patron.clv.summary import CustomerSummary, calibration_and_holdout, evaluate_holdout, summary_from_transactions

__all__ = [
    "BgNbdParams",
    "Convergence",
    "CustomerSummary",
    "GammaGammaParams",
    "HoldoutBucket",
    "HoldoutEvaluation",
    "ModelFit",
    "ParetoNbdParams",
    "bgnbd",
    "calibration_and_holdout",
    "evaluate_holdout",
    "gamma_gamma",
    "pareto_nbd",
    "summary_from_transactions",
]
