"""Values of the CLV package: fitted parameters, fit records, holdout evaluations.

Everything here is a frozen dataclass: parameters are plain numbers, a fit is
the parameters plus the log-likelihood at the optimum and how the optimiser got
there. ``maximise_log_likelihood`` is the one optimiser every model shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize  # type: ignore[import-untyped]

__all__ = [
    "BgNbdParams",
    "Convergence",
    "FloatArray",
    "GammaGammaParams",
    "HoldoutBucket",
    "HoldoutEvaluation",
    "ModelFit",
    "ModelName",
    "ParetoNbdParams",
    "TimeUnit",
    "maximise_log_likelihood",
]

FloatArray = npt.NDArray[np.float64]
ModelName = Literal["bgnbd", "pareto", "gammagamma"]
TimeUnit = Literal["days", "weeks", "months"]


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD: purchase rate ~ Gamma(r, alpha), dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class ParetoNbdParams:
    """Pareto/NBD: purchase rate ~ Gamma(r, alpha), dropout rate ~ Gamma(s, beta)."""

    r: float
    alpha: float
    s: float
    beta: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend: transaction value ~ Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float
    q: float
    v: float


ParamsT = TypeVar("ParamsT", BgNbdParams, ParetoNbdParams, GammaGammaParams)


@dataclass(frozen=True)
class Convergence:
    """How the optimiser ended: its own verdict, the work done and the wall time."""

    converged: bool
    message: str
    iterations: int
    evaluations: int
    seconds: float


@dataclass(frozen=True)
class ModelFit(Generic[ParamsT]):
    """A maximum-likelihood fit: parameters, total log-likelihood, customers used."""

    model: ModelName
    params: ParamsT
    log_likelihood: float
    customers: int
    convergence: Convergence

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HoldoutBucket:
    """Customers with one calibration frequency (the last bucket holds that many or more)."""

    frequency: int
    customers: int
    predicted_mean: float
    actual_mean: float


@dataclass(frozen=True)
class HoldoutEvaluation:
    """Predicted against actual holdout purchases, per frequency bucket and overall.

    ``total_error`` is predicted minus actual purchases over all customers;
    ``mean_absolute_error`` is the per-customer mean of |predicted - actual|.
    """

    buckets: tuple[HoldoutBucket, ...]
    customers: int
    predicted_total: float
    actual_total: float
    total_error: float
    mean_absolute_error: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# (distinct rows, weights summing to 1) -> f(log-parameters) = negative mean log-likelihood [, its gradient].
ObjectiveFactory = Callable[[Sequence[FloatArray], FloatArray], Callable[[FloatArray], Any]]

# Above this many customers a seeded subsample is fitted first; its optimum starts the full fit, which then
# needs a handful of iterations instead of dozens on a million rows. The subsample also tells whether merging
# identical customers is worth its cost (it is for day-level data, not for continuous simulated times).
_WARM_START_ROWS = 100_000
_SUBSAMPLE = 25_000
_LOG_BOUND = 20.0


def _distinct_rows(columns: Sequence[FloatArray]) -> tuple[list[FloatArray], FloatArray]:
    """Merge identical customers into one row with a count (CDNOW: 2,357 customers, 1,016 distinct rows)."""
    frame = pd.DataFrame({k: column for k, column in enumerate(columns)})
    counts = frame.groupby(list(frame.columns), sort=False, dropna=False).size()
    rows: list[FloatArray] = [
        np.asarray(counts.index.get_level_values(k), dtype=np.float64) for k in range(len(columns))
    ]
    return rows, np.asarray(counts, dtype=np.float64)


def _minimise(objective: Callable[[FloatArray], Any], start: FloatArray, *, jac: bool, rough: bool = False) -> Any:
    """Bounded L-BFGS-B; ``rough`` (a subsample's warm start) takes forward differences and stops earlier."""
    return minimize(
        objective,
        start,
        jac=True if jac else ("2-point" if rough else "3-point"),
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
        options={"maxiter": 1000, "ftol": 1e-10 if rough else 1e-13, "gtol": 1e-6 if rough else 1e-9},
    )


def _hessian(objective: Callable[[FloatArray], Any], theta: FloatArray, *, jac: bool, step: float = 1e-4) -> FloatArray:
    """Central second differences of the objective's value (1 + 2n^2 evaluations)."""

    def value(point: FloatArray) -> float:
        out = objective(point)
        return float(out[0] if jac else out)

    n = len(theta)
    shift = np.eye(n) * step
    centre = value(theta)
    hessian = np.empty((n, n))
    for i in range(n):
        hessian[i, i] = (value(theta + shift[i]) - 2 * centre + value(theta - shift[i])) / step**2
        for j in range(i):
            corners = [value(theta + a * shift[i] + b * shift[j]) for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
            hessian[i, j] = hessian[j, i] = (corners[0] - corners[1] - corners[2] + corners[3]) / (4 * step**2)
    return hessian


def _refine(objective: Callable[[FloatArray], Any], start: FloatArray, hessian: FloatArray, *, jac: bool) -> Any:
    """BFGS from the subsample's optimum, seeded with its inverse Hessian: a few steps on the full data.

    Falls back to bounded L-BFGS-B when the Hessian is not positive definite or BFGS stops short.
    """
    try:
        inverse = np.linalg.inv(np.linalg.cholesky(hessian))
    except np.linalg.LinAlgError:
        return _minimise(objective, start, jac=jac)
    result = minimize(
        objective,
        start,
        jac=True if jac else "3-point",
        method="BFGS",
        options={"maxiter": 200, "gtol": 1e-7, "hess_inv0": inverse.T @ inverse},
    )
    if result.success:
        return result
    fallback = _minimise(objective, result.x, jac=jac)
    fallback.nit, fallback.nfev = fallback.nit + result.nit, fallback.nfev + result.nfev
    return fallback


def maximise_log_likelihood(
    objective_for: ObjectiveFactory,
    start: Sequence[float],
    columns: Sequence[FloatArray],
    *,
    jac: bool,
    seed: int = 0,
) -> tuple[FloatArray, float, Convergence]:
    """Minimise a weighted mean negative log-likelihood over log-parameters.

    ``objective_for(rows, weights)`` builds the objective once per data set, so that a model can precompute
    what does not depend on the parameters; identical customers are merged into weighted rows. Up to
    ``_WARM_START_ROWS`` customers this is bounded L-BFGS-B; above, a seeded subsample is fitted first and its
    optimum and Hessian start BFGS on all customers. Without ``jac`` gradients are finite differences.
    Returns the parameters (exponentiated), the total log-likelihood and the convergence record.
    """
    began = time.perf_counter()
    theta = np.log(np.asarray(start, dtype=np.float64))
    customers = len(columns[0])
    iterations = evaluations = 0
    if customers <= _WARM_START_ROWS:
        rows, counts = _distinct_rows(columns)
        result = _minimise(objective_for(rows, counts / customers), theta, jac=jac)
    else:
        pick = np.random.default_rng(seed).choice(customers, size=_SUBSAMPLE, replace=False)
        rows, counts = _distinct_rows([c[pick] for c in columns])
        sample_objective = objective_for(rows, counts / _SUBSAMPLE)
        warm = _minimise(sample_objective, theta, jac=jac, rough=True)
        hessian = _hessian(sample_objective, warm.x, jac=jac)
        iterations, evaluations = int(warm.nit), int(warm.nfev) + 1 + 2 * len(theta) ** 2
        if len(counts) < 0.8 * _SUBSAMPLE:
            rows, counts = _distinct_rows(columns)
        else:
            rows, counts = list(columns), np.ones(customers)
        result = _refine(objective_for(rows, counts / customers), warm.x, hessian, jac=jac)
    convergence = Convergence(
        converged=bool(result.success),
        message=str(result.message),
        iterations=iterations + int(result.nit),
        evaluations=evaluations + int(result.nfev),
        seconds=time.perf_counter() - began,
    )
    return np.exp(result.x), -float(result.fun) * customers, convergence
