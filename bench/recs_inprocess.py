"""In-process recommendation latency: ``RecEngine.for_member`` top-10 with serving rules, 100k items.

A synthetic shop: 100,000 items in 500 categories (2% out of stock, 0.5% hidden), 200,000 members with
about 10 interactions each drawn from a Zipf popularity (2M interactions) and 3 purchases each. An ALS
model (32 factors, 2 iterations) is fitted on it, written as a version directory like ``train_version``
writes (with its candidate index), and opened twice with ``RecEngine.open``: through the candidate index
(the default at this size) and with every item scored (``index_min_items=None``).

The recall of the index: for 2,000 members, the exact top 10 of the model's scores against the top 10 of
the index's candidates (scored exactly), and the default-rules pages of both engines against each other.

Timed, one request at a time in one thread (after a warm-up), the two engines alternating request by
request so that both see the same machine load, p50 / p99 / max over the requests:

* ``model.scores``: the model's scoring call alone, for a known member (what serving adds is the difference);
* ``member``: a known member, default rules (availability, already-bought exclusion), reasons;
* ``member+filters``: the same with a price range, an excluded category and a 20-item exclude list;
* ``member+feedback``: a member with live feedback (the history is folded in: ALS's least-squares solve);
* ``member+mmr``: default rules and MMR diversity (lambda 0.7) over the candidates;
* ``cold``: an unknown member (trending in their segment).

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/recs_inprocess.py [--items 100000] [--members 200000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_rss_mib, section

from patron.recs.base import Interactions, ItemCatalog
from patron.recs.interactions import InteractionConfig
from patron.recs.models.mf import Als
from patron.recs.rules import ItemFacts, RecRequest
from patron.recs.serving import RecEngine, RecList
from patron.recs.training import write_version


def synthetic(n_items: int, n_members: int, rng: np.random.Generator) -> tuple[Interactions, Interactions, ItemFacts]:
    item_ids = np.asarray([f"p{n:06d}" for n in range(n_items)])
    member_ids = np.asarray([f"m{n:07d}" for n in range(n_members)])
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    per_member = rng.poisson(10, n_members) + 1
    users = np.repeat(np.arange(n_members), per_member)
    items = rng.choice(n_items, size=len(users), p=popularity)
    weights = rng.choice([1.0, 2.0, 3.0, 4.0], size=len(users), p=[0.6, 0.1, 0.15, 0.15])
    data = Interactions.from_indices(member_ids, item_ids, users, items, weights)
    bought = weights == 4.0
    purchases = Interactions.from_indices(member_ids, item_ids, users[bought], items[bought], np.ones(bought.sum()))
    catalog = ItemCatalog(
        item_ids,
        np.asarray([f"item {n}" for n in range(n_items)], dtype=object),
        np.asarray([f"cat{n}" for n in rng.integers(0, 500, n_items)], dtype=object),
        np.asarray([""] * n_items, dtype=object),
        np.round(rng.lognormal(3.0, 1.0, n_items), 2),
    )
    facts = ItemFacts.from_catalog(catalog, in_stock=rng.random(n_items) > 0.02, hidden=rng.random(n_items) < 0.005)
    return data, purchases, facts


def build_version(directory: Path, n_items: int, n_members: int) -> dict[str, float]:
    rng = np.random.default_rng(7)
    began = time.perf_counter()
    data, purchases, facts = synthetic(n_items, n_members, rng)
    made = time.perf_counter()
    model = Als(factors=32, iterations=2, threads=1).fit(data)
    fitted = time.perf_counter()
    scores = np.asarray(data.matrix.sum(axis=0)).ravel()
    top = np.argsort(-scores)[:1000]
    trending = pa.table(
        {
            "segment": ["", *(["champions"] * 1000)][: 1 + 1000],
            "item_id": [str(data.item_ids[top[0]]), *data.item_ids[top].tolist()],
            "score": [float(scores[top[0]]), *scores[top].astype(float).tolist()],
        }
    )
    segments = {str(m): "champions" for m in data.user_ids[:1000]}
    extra = write_version(directory, model, facts, purchases, segments, trending, InteractionConfig())
    (directory / "manifest.json").write_text(json.dumps({"model": "als", "synthetic": True}))
    print(json.dumps({"candidate_index": extra.get("candidate_index")}))
    return {"generate_s": made - began, "fit_s": fitted - made, "write_s": time.perf_counter() - fitted}


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


def recall(indexed: RecEngine, exact: RecEngine, members: list[str]) -> dict[str, float]:
    """Recall@10 of the index's candidates (no rules) and overlap of the default pages with exact ones."""
    index, model = indexed.index, indexed.model
    assert index is not None and isinstance(model, Als)
    raw = pages = 0
    for m in members:
        vector = model.user_factors[indexed.user_index[m]]
        found = index.search(vector, 128)
        best = found[np.lexsort((found, -model.item_scores(vector, found)))][:10]
        truth = np.argsort(-model.item_scores(vector))[:10]
        raw += len(set(best.tolist()) & set(truth.tolist()))
        fast, slow = indexed.for_member(m), exact.for_member(m)
        pages += len({i.item_id for i in fast.items} & {i.item_id for i in slow.items})
    return {"index_recall_at_10": raw / (10 * len(members)), "page_overlap_at_10": pages / (10 * len(members))}


def measure(indexed: RecEngine, exact: RecEngine, requests: int, rng: np.random.Generator) -> dict[str, Any]:
    members = indexed.model.user_ids
    cats = indexed.facts.categories
    items = indexed.facts.item_ids
    filters = RecRequest(
        price_min=5,
        price_max=80,
        exclude_categories=[str(cats[1])],
        exclude=items[rng.integers(0, len(items), 20)].tolist(),
    )
    narrow = RecRequest(price_max=float(np.nanpercentile(indexed.facts.price, 1)))

    def scores_only(engine: RecEngine, m: str) -> None:
        row = engine.user_index[m]
        engine.model.scores(engine.history(m)[0], np.asarray([row]))

    cases: dict[str, Any] = {
        "model.scores": scores_only,
        "member": lambda e, m: e.for_member(m),
        "member+filters": lambda e, m: e.for_member(m, filters),
        "member+1%price": lambda e, m: e.for_member(m, narrow),
        "member+feedback": lambda e, m: e.for_member(m),
        "member+mmr": lambda e, m: e.for_member(m, RecRequest(diversity=0.7)),
        "cold": lambda e, m: e.for_member("new-" + m),
    }
    out: dict[str, Any] = {}
    for name, call in cases.items():
        picked = members[rng.integers(0, len(members), requests + 50)].tolist()
        if name == "member+feedback":
            for m in picked:
                item = str(items[rng.integers(0, len(items))])
                for engine in (indexed, exact):
                    engine.with_feedback(m, item, "cart")
        samples: dict[str, list[float]] = {"index": [], "exact": []}
        # each engine answers its own block of the same requests, as a serving process answers with one
        # engine: interleaving them would let the exact engine's sweep of every item evict the index's cells
        for label, engine in (("index", indexed), ("exact", exact)):
            for n, m in enumerate(picked):
                began = time.perf_counter()
                rec: RecList | None = call(engine, m)
                elapsed = time.perf_counter() - began
                assert rec is None or len(rec.items) == 10
                if n >= 50:  # warm-up
                    samples[label].append(elapsed)
        out[name] = {label: percentiles(values) for label, values in samples.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "version"
        directory.mkdir()
        with section(f"version: {args.items:,} items, {args.members:,} members"):
            print(json.dumps({k: round(v, 2) for k, v in build_version(directory, args.items, args.members).items()}))
        began = time.perf_counter()
        indexed = RecEngine.open(directory)
        opened = time.perf_counter()
        exact = RecEngine.open(directory, index_min_items=None)
        print(
            f"RecEngine.open: {opened - began:.2f} s with the stored index, {time.perf_counter() - opened:.2f} s exact"
        )
        assert indexed.index is not None
        print(json.dumps({"index": {k: v for k, v in vars(indexed.index.header).items() if k != "fingerprint"}}))
        with section("recall of the candidate index, 2,000 members"):
            sample = indexed.model.user_ids[np.random.default_rng(3).integers(0, args.members, 2000)].tolist()
            print(json.dumps({k: round(v, 4) for k, v in recall(indexed, exact, sample).items()}))
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        with section(f"for_member top-10, {args.requests} requests per case and engine, one thread, ms (load {load})"):
            print(f"{'case':16s} {'index p50':>9s} {'p99':>7s} {'max':>7s}   {'exact p50':>9s} {'p99':>7s} {'max':>7s}")
            for name, figures in measure(indexed, exact, args.requests, np.random.default_rng(11)).items():
                row = [figures[e][k] for e in ("index", "exact") for k in ("p50_ms", "p99_ms", "max_ms")]
                print(
                    f"{name:16s} {row[0]:9.3f} {row[1]:7.3f} {row[2]:7.3f}   {row[3]:9.3f} {row[4]:7.3f} {row[5]:7.3f}"
                )
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
