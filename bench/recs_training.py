"""Training time of Patron's als, bpr, ease and itemknn beside plain implicit on the same matrix.

Data: online-retail (customers with an id, cancellations and non-positive quantities dropped, weight =
distinct invoices per customer x StockCode) and the taobao prefix (weights pv 1, fav 2, cart 3, buy 4,
summed per user x item). For each data set, each Patron model is timed (best of ``--runs``) beside a
plain script doing the same fit with implicit on the same matrix in the same process, the two sides
taking turns: ALS with the same factors, iterations and confidence matrix 1 + alpha * weight; BPR with
implicit's BPR (popularity sampling, Patron's ``sampling="popularity"``) and Patron's uniform BPR;
item-kNN beside implicit's BM25Recommender with the same K1, B and K. EASE has no implicit counterpart. Run::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/recs_training.py --runs 3
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: implicit's own threads do the work

import argparse
import json
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from _common import DATA, best_of, machine, peak_rss_mib, section

from patron.recs.base import Interactions
from patron.recs.models import load_all

FACTORS, ITERATIONS, ALPHA, REG = 64, 15, 2.0, 0.05
TAOBAO_WEIGHTS = {"pv": 1.0, "fav": 2.0, "cart": 3.0, "buy": 4.0}


def online_retail() -> Interactions:
    frame = pl.read_csv(
        DATA / "online_retail/online_retail.csv.gz",
        schema_overrides={"CustomerID": pl.Utf8, "InvoiceNo": pl.Utf8, "StockCode": pl.Utf8},
    )
    kept = frame.filter(
        pl.col("CustomerID").is_not_null() & ~pl.col("InvoiceNo").str.starts_with("C") & (pl.col("Quantity") > 0)
    )
    pairs = kept.group_by("CustomerID", "StockCode").agg(pl.col("InvoiceNo").n_unique().alias("weight"))
    return Interactions.from_events(
        pairs["CustomerID"].to_numpy(), pairs["StockCode"].to_numpy(), pairs["weight"].to_numpy().astype(np.float32)
    )


def taobao() -> Interactions:
    frame = pl.read_csv(
        DATA / "taobao_userbehavior/UserBehavior_first_users_prefix.csv.gz",
        has_header=False,
        new_columns=["user", "item", "category", "behavior", "time"],
        schema_overrides={"user": pl.Utf8, "item": pl.Utf8, "category": pl.Utf8, "behavior": pl.Utf8},
    )
    weight = pl.col("behavior").replace_strict(TAOBAO_WEIGHTS, default=0.0, return_dtype=pl.Float32)
    frame = frame.with_columns(weight.alias("weight")).filter(pl.col("weight") > 0)
    return Interactions.from_events(
        frame["user"].to_numpy(), frame["item"].to_numpy(), frame["weight"].to_numpy(), frame["time"].to_numpy()
    )


def plain_implicit(kind: str, matrix: sp.csr_matrix) -> Callable[[], Any]:
    """The same fit written directly against implicit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.nearest_neighbours import BM25Recommender

    def als() -> Any:
        confidence = matrix.copy()
        confidence.data = 1.0 + ALPHA * confidence.data
        model = AlternatingLeastSquares(factors=FACTORS, regularization=REG, iterations=ITERATIONS, random_state=42)
        model.fit(confidence, show_progress=False)
        return model

    def bpr() -> Any:
        binary = matrix.copy()
        binary.data[:] = 1.0
        model = BayesianPersonalizedRanking(factors=FACTORS, iterations=60, random_state=42, num_threads=1)
        model.fit(binary, show_progress=False)
        return model

    def itemknn() -> Any:
        model = BM25Recommender(K=100, K1=1.2, B=0.75)
        model.fit(matrix, show_progress=False)
        return model

    return {"als": als, "bpr": bpr, "itemknn": itemknn}[kind]


CASES: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("als", "als", {"factors": FACTORS, "iterations": ITERATIONS, "alpha": ALPHA, "regularization": REG}, "als"),
    ("bpr (popularity)", "bpr", {"factors": FACTORS, "iterations": 60, "sampling": "popularity"}, "bpr"),
    ("bpr (uniform)", "bpr", {"factors": FACTORS, "iterations": 60, "sampling": "uniform"}, None),
    ("ease", "ease", {"l2": 750.0, "max_items": 20_000}, None),
    ("itemknn (bm25)", "itemknn", {"similarity": "bm25", "k1": 1.2, "b": 0.75, "neighbours": 100}, "itemknn"),
]


def alternating(runs: int, ours: Callable[[], Any], theirs: Callable[[], Any] | None) -> tuple[float, float | None]:
    """Best of ``runs`` for each side, the sides taking turns so that a change of machine load hits both."""
    best_ours, best_theirs = float("inf"), float("inf")
    for _ in range(runs):
        best_ours = min(best_ours, best_of(1, ours)[1])
        if theirs is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # implicit warns about its own COO intermediate
                best_theirs = min(best_theirs, best_of(1, theirs)[1])
    return best_ours, (best_theirs if theirs is not None else None)


def bench(name: str, data: Interactions, runs: int, skip: set[str]) -> list[dict[str, Any]]:
    models = load_all()
    rows = []
    with section(f"{name}: {data.n_users:,} users x {data.n_items:,} items, {data.matrix.nnz:,} pairs"):
        for label, model, params, baseline in CASES:
            if model in skip:
                continue
            if model == "ease" and data.n_items > params["max_items"]:
                print(f"{label:18s} skipped: {data.n_items:,} items > max_items")
                continue
            ours, theirs = alternating(
                runs,
                lambda m=model, p=params: models[m](**p).fit(data),
                plain_implicit(baseline, data.matrix) if baseline else None,
            )
            ratio = f"{ours / theirs:.2f}x" if theirs else "-"
            shown = f"{theirs:.2f} s" if theirs else "-"
            print(f"{label:18s} patron {ours:7.2f} s   implicit {shown:>9s}   ratio {ratio}", flush=True)
            rows.append({"data": name, "model": label, "patron_s": ours, "implicit_s": theirs})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="best of this many fits, for each side")
    parser.add_argument("--skip", default="", help="comma-separated models to leave out (als,bpr,ease,itemknn)")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    print(f"machine: {machine()}; started {datetime.now():%Y-%m-%d %H:%M}")
    rows = bench("online_retail", online_retail(), args.runs, skip) + bench("taobao", taobao(), args.runs, skip)
    print(f"\npeak RSS {peak_rss_mib():,.0f} MiB")
    print("RESULT " + json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
