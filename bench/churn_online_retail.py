"""The churn step: the model against BG/NBD and recency on online-retail, and its time on a large shop.

Online-retail is imported into a fresh temporary data directory, then ``churn_step`` runs as of
2011-12-10 (the day after the last invoice) with a 90-day horizon: training window from 2011-06-13,
validation window from 2011-09-11. The model and the baselines (1 - P(alive), BG/NBD's P(no purchase in
90 days), days since the last purchase) are scored on the same validation members. Run::

    .venv/bin/python bench/churn_online_retail.py --runs 3

With ``--warehouse`` the step runs instead on an existing DuckDB warehouse, opened read-only (for
instance the 1M-member demo shop that bench/rfm_kpis.py prepares in its ``--home``)::

    .venv/bin/python bench/churn_online_retail.py --warehouse HOME/warehouse.duckdb
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import DATA, machine, peak_rss_mib, section, timed

SCORES = (
    ("model", "churn model"),
    ("bgnbd_no_purchase", "BG/NBD P(no purchase)"),
    ("p_alive", "1 - P(alive)"),
    ("recency", "days since last purchase"),
)


def import_online_retail(home: Path) -> float:
    from patron.ingest.service import run_import
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    runtime = Runtime(Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY))
    try:
        runtime.store.migrate()
        _, seconds = timed(lambda: run_import(runtime, "online-retail", DATA / "online_retail/online_retail.csv.gz"))
    finally:
        runtime.close()
    return seconds


def run_step(warehouse_path: Path, as_of: datetime | None) -> tuple[Any, float, float, datetime]:
    """One churn step; returns the result, wall seconds, CPU seconds (all threads) and the as-of used."""
    from patron.churn import churn_step
    from patron.warehouse.store import Warehouse

    with Warehouse(f"duckdb:///{warehouse_path}", read_only=True) as warehouse:
        if as_of is None:
            last = warehouse.table("orders").ordered_at.max().execute()
            as_of = datetime.combine(last.date() + timedelta(days=1), datetime.min.time())
        tables = [warehouse.table(name) for name in ("orders", "order_lines", "products")]
        wall, cpu = time.perf_counter(), time.process_time()
        result = churn_step(*tables, as_of)
        return result, time.perf_counter() - wall, time.process_time() - cpu, as_of


def show(report: dict[str, Any]) -> None:
    if report["status"] != "ok":
        print(f"no model: {report['reason']}")
        return
    for window in ("training", "validation", "scoring"):
        w = report[window]
        rate = "" if w["churn_rate"] is None else f", churn rate {w['churn_rate']:.3f}"
        used = "" if w["rows_used"] is None else f", {w['rows_used']:,} rows fitted"
        print(f"{window:<10} cut-off {w['cut_off'][:10]}: {w['members']:,} members{rate}{used}")
    print(f"\n{'score':<26} {'AUC':>7} {'prec@10%':>9} {'prec@100':>9} {'Brier':>7}")
    for key, label in SCORES:
        m = report["metrics"][key]
        if m is None:
            print(f"{label:<26} not fitted")
            continue
        brier = "-" if m["brier"] is None else f"{m['brier']:.4f}"
        print(f"{label:<26} {m['auc']:7.4f} {m['precision_top_decile']:9.4f} {m['precision_at_100']:9.4f} {brier:>7}")
    rate = report["metrics"]["model"]["churn_rate"]
    print(f"{'base rate (constant)':<26} {0.5:7.4f} {rate:9.4f} {rate:9.4f} {rate * (1 - rate):7.4f}")
    print("\nmodel calibration (validation deciles): mean predicted / observed")
    for b in report["metrics"]["model"]["calibration"]:
        print(f"  {b['mean_predicted']:.3f} / {b['observed_rate']:.3f}  ({b['members']:,} members)")
    top = ", ".join(f"{f['feature']} {f['auc_drop']:.4f}" for f in report["feature_importance"][:6])
    print(f"\npermutation importance (AUC drop): {top}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="Repeat the step; the fastest run is reported.")
    parser.add_argument("--warehouse", type=Path, help="An existing DuckDB warehouse (read-only) instead.")
    parser.add_argument("--as-of", type=datetime.fromisoformat, help="Default: the day after the last order.")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="patron-churn-") as tmp:
        path = args.warehouse
        if path is None:
            with section("import online-retail"):
                print(f"{import_online_retail(Path(tmp)):.2f} s")
            path = Path(tmp) / "warehouse.duckdb"
        runs = [run_step(path, args.as_of) for _ in range(args.runs)]
    result, wall, cpu, as_of = min(runs, key=lambda run: run[1])
    report = result.report()
    with section(f"churn step as of {as_of:%Y-%m-%d}, horizon {report['horizon_days']} days"):
        show(report)
    with section("time"):
        walls = ", ".join(f"{run[1]:.2f}" for run in runs)
        print(
            f"wall {wall:.2f} s (runs: {walls}), CPU {cpu:.2f} s over all threads, peak RSS {peak_rss_mib():,.0f} MiB"
        )
        print("stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report["seconds"].items()))


if __name__ == "__main__":
    main()
