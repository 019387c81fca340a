"""BG/NBD from raw transactions: Patron against lifetimes, on customers simulated from known parameters.

Transactions of ``--customers`` customers are simulated from the BG/NBD story (numpy, vectorised): first
purchases spread over the first 12 weeks of a 52-week window, then Poisson purchasing while alive and a
dropout chance after every repeat purchase, at random times of day. Both libraries then go from the
transaction table to fitted parameters, in weeks:

- Patron: ``patron.clv.summary_from_transactions`` (time_unit="weeks") + ``patron.clv.bgnbd.fit``;
- lifetimes: ``summary_data_from_transaction_data`` (freq="D", freq_multiplier=7) + ``BetaGeoFitter().fit``.

The script asserts that the two summaries are equal and that the fitted parameters agree within 1e-4
relative before it prints the ratio. Run::

    .venv/bin/python bench/bgnbd_vs_lifetimes.py --customers 1000000 --runs 1
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: BLAS threads only add overhead to small steps

import argparse
import warnings
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from _common import best_of, machine, peak_rss_mib, section, timed

from patron.clv import bgnbd, summary_from_transactions
from patron.clv.schemas import BgNbdParams, ModelFit
from patron.clv.summary import CustomerSummary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter  # type: ignore[import-untyped]
    from lifetimes.utils import summary_data_from_transaction_data  # type: ignore[import-untyped]

TRUE = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)  # rate per week; close to the CDNOW estimates
START = np.datetime64("2024-01-01T00:00:00", "s")
WINDOW_DAYS = 364  # observation ends at the start of day 364 (52 weeks after START)
COHORT_DAYS = 84  # first purchases in the first 12 weeks
NAMES = ("r", "alpha", "a", "b")


def simulate_transactions(customers: int, params: BgNbdParams, seed: int) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One row per purchase (customer_id, date), sorted by date; and the observation end."""
    rng = np.random.default_rng(seed)
    first_day = rng.integers(0, COHORT_DAYS, size=customers)
    age_weeks = (WINDOW_DAYS - first_day) / 7.0
    rate = rng.gamma(params.r, 1.0 / params.alpha, size=customers)  # purchases per week while alive
    dropout = np.maximum(rng.beta(params.a, params.b, size=customers), 1e-12)
    arrivals = rng.poisson(rate * age_weeks)  # Poisson arrivals on (0, T] if the customer never dropped out
    survives = rng.geometric(dropout)  # the customer drops out right after this repeat purchase
    # The arrival times are uniform on (0, T]; keep each customer's first min(arrivals, survives) of them.
    owner = np.repeat(np.arange(customers), arrivals)
    when = rng.random(owner.size) * age_weeks[owner] * 7.0  # days after the first purchase
    order = np.lexsort((when, owner))
    owner, when = owner[order], when[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < survives[owner]
    owner, when = owner[keep], when[keep]
    day = np.concatenate([first_day, first_day[owner] + np.floor(when).astype(np.int64)])
    who = np.concatenate([np.arange(customers), owner])
    seconds = day * 86_400 + rng.integers(0, 86_400, size=day.size)  # a time of day: both libraries drop it
    ids = rng.permutation(customers).astype(np.int64) + 1_000_000  # ids unrelated to the order of arrival
    frame = pd.DataFrame({"customer_id": ids[who], "date": (START + seconds.astype("timedelta64[s]"))})
    frame = frame.sort_values("date", kind="stable", ignore_index=True)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame, pd.Timestamp(START + np.timedelta64(WINDOW_DAYS, "D"))


def patron_pipeline(transactions: pd.DataFrame, end: pd.Timestamp) -> tuple[pd.DataFrame, ModelFit[BgNbdParams]]:
    summary, summary_s = timed(lambda: summary_from_transactions(transactions, observation_end=end, time_unit="weeks"))
    fit, fit_s = timed(lambda: bgnbd.fit(CustomerSummary.from_frame(summary)))
    assert fit.convergence.converged, fit.convergence
    print(f"summary {summary_s:.2f} s, fit {fit_s:.2f} s ({fit.convergence.iterations} iterations)")
    return summary, fit


def lifetimes_pipeline(transactions: pd.DataFrame, end: pd.Timestamp) -> tuple[pd.DataFrame, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary, summary_s = timed(
            lambda: summary_data_from_transaction_data(
                transactions, "customer_id", "date", observation_period_end=end, freq="D", freq_multiplier=7
            )
        )
        fitter, fit_s = timed(
            lambda: BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
        )
    print(f"summary {summary_s:.2f} s, fit {fit_s:.2f} s")
    return summary, fitter


def compare_summaries(ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    """Assert equal customers, frequencies, recencies and ages; return the largest difference in recency or T."""
    theirs = theirs.sort_index()
    assert ours.index.equals(theirs.index), "different customers"
    assert np.array_equal(ours["frequency"].to_numpy(np.float64), theirs["frequency"].to_numpy(np.float64))
    gap = 0.0
    for column in ("recency", "T"):
        difference = np.abs(ours[column].to_numpy(np.float64) - theirs[column].to_numpy(np.float64))
        gap = max(gap, float(difference.max()))
    assert gap <= 1e-12, f"recency or T differ by up to {gap:.3g} weeks"
    return gap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=1, help="best of this many runs, for each library")
    args = parser.parse_args()
    print(f"machine: {machine()}; started {datetime.now():%Y-%m-%d %H:%M}")
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; true parameters {TRUE}")

    with section(f"simulate {args.customers:,} customers (seed {args.seed})"):
        (transactions, end), sim_s = timed(lambda: simulate_transactions(args.customers, TRUE, args.seed))
        print(f"{len(transactions):,} transactions, observation end {end.date()}, {sim_s:.1f} s")

    with section("Patron: summary_from_transactions + bgnbd.fit"):
        (ours, fit), patron_s = best_of(args.runs, lambda: patron_pipeline(transactions, end))
        params, log_likelihood = fit.params, fit.log_likelihood
        print(f"best of {args.runs}: {patron_s:.2f} s; {params}")

    with section("lifetimes: summary_data_from_transaction_data + BetaGeoFitter().fit"):
        (theirs, fitter), lifetimes_s = best_of(args.runs, lambda: lifetimes_pipeline(transactions, end))
        their_params = BgNbdParams(*(float(fitter.params_[k]) for k in NAMES))
        print(f"best of {args.runs}: {lifetimes_s:.2f} s; {their_params}")

    gap = compare_summaries(ours, theirs)
    relative = max(abs(getattr(params, k) / getattr(their_params, k) - 1.0) for k in NAMES)
    summary = CustomerSummary.from_frame(ours)
    their_ll = float(bgnbd.log_likelihood(their_params, summary.frequency, summary.recency, summary.T).sum())
    print(
        f"\nsummaries equal ({len(ours):,} customers, {int(ours['frequency'].gt(0).sum()):,} repeat buyers; "
        f"recency/T max difference {gap:.1g} weeks); parameters max relative difference {relative:.2e}; "
        f"log-likelihood Patron {log_likelihood:,.4f}, lifetimes' parameters {their_ll:,.4f}"
    )
    assert relative < 1e-4, f"fitted parameters differ by {relative:.3g} relative"
    print(
        f"\nRESULT bgnbd from {len(transactions):,} transactions of {args.customers:,} customers: "
        f"patron {patron_s:.2f} s, lifetimes {lifetimes_s:.2f} s, speed-up {lifetimes_s / patron_s:.1f}x; "
        f"summaries equal, parameters within {relative:.1e} relative; peak RSS {peak_rss_mib():,.0f} MiB"
    )
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
