"""Recommender comparison on the reference data sets: every model and the hybrid, per published protocol.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/recs_evaluate.py [--only movielens] [--json out.json]
        [--search-budget SECONDS] [--folds N] [--report-dir DIR]

Without ``--search-budget`` the models run with the parameters chosen on the
validation splits (``patron.recs.evaluation.search.TUNED``); with it, they are
searched again on each validation split first (with ``--folds N`` the blend is
scored by its mean NDCG over ``N`` validation folds). The test split never
chooses anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_rss_mib, section, timed

from patron.recs.evaluation.datasets import load_dataset
from patron.recs.evaluation.harness import EvaluationReport, ModelSpec, evaluate_models
from patron.recs.evaluation.protocols import make_split
from patron.recs.evaluation.report import markdown_table, write_report
from patron.recs.evaluation.search import TUNED, tune
from patron.recs.models import load_all

# (key, data set, protocol, repeats counted, K)
RUNS = (
    ("movielens", "movielens-100k", "ms-stratified", False, 10),
    ("online-retail-repeats", "online-retail", "temporal", True, 10),
    ("online-retail-new", "online-retail", "temporal", False, 10),
    ("taobao-repeats", "taobao", "temporal", True, 20),
)
SLOW = {"bpr"}  # minutes per fit on one core; run with --with-slow


def run(
    key: str, dataset: str, protocol: str, repeats: bool, k: int, budget: float, slow: bool, folds: int = 1
) -> EvaluationReport:
    split = make_split(load_dataset(dataset), protocol, repeats=repeats)  # type: ignore[arg-type]
    names = [m for m in load_all() if m != "hybrid" and (slow or m not in SLOW)] + ["hybrid"]
    if budget > 0:
        validation = split.validation_folds(max(folds, 1))
        specs, found = tune(names, validation[0], seconds=budget, k=k, folds=validation[1:])
        searches = [s.model_dump(mode="json", exclude={"trials"}) for s in found]
    else:
        tuned = TUNED.get(key, {})
        specs = [ModelSpec(model=m, params=tuned.get(m, {})) for m in names]
        searches = []
    report = evaluate_models(split, specs, k)
    report.searches = searches
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the runs whose key contains this text")
    parser.add_argument("--json", type=Path, help="write every report as one JSON file")
    parser.add_argument("--search-budget", type=float, default=0.0)
    parser.add_argument("--folds", type=int, default=1, help="validation folds scoring the blend search")
    parser.add_argument("--report-dir", type=Path)
    parser.add_argument("--with-slow", action="store_true", help=f"also run {', '.join(sorted(SLOW))}")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    out = {}
    for key, *setup in RUNS:
        if args.only and args.only not in key:
            continue
        with section(key):
            report, seconds = timed(partial(run, key, *setup, args.search_budget, args.with_slow, args.folds))
            print(markdown_table(report))
            print(f"{seconds:.0f} s in all")
            out[key] = report.model_dump(mode="json")
            if args.report_dir:
                write_report(report, args.report_dir / f"{key}.md")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
