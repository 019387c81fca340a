"""Backtest WAPE of the seasonal baseline and the learned model, and the forecast step's time.

Runs ``forecast_step`` (demand from the warehouse, 3 rolling windows of 28 days, the final fit, stock
warnings) on online-retail and on a demo shop, and prints WAPE per level and forecaster, per window
and over all windows, with the step's timings. Run::

    .venv/bin/python bench/forecast_backtest.py --members 100000
    .venv/bin/python bench/forecast_backtest.py --members 1000000 --home /tmp/patron-bench-1m

``--home`` keeps (or reuses) the demo shop's data directory, such as the one ``bench/rfm_kpis.py``
prepares; without it the shop is generated into a temporary directory and removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import datetime, time
from pathlib import Path
from typing import Any

from _common import DATA, machine, peak_rss_mib, section, timed


def runtime_for(home: Path, *, create: bool = True) -> Any:
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    home.mkdir(parents=True, exist_ok=True)
    runtime = Runtime(Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY))
    if create:
        runtime.store.migrate()
    return runtime


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{value:6.1%}"


def report(name: str, result: Any, seconds: float) -> None:
    data = result.report()
    print(f"{name}: history {data['history']['start']} .. {data['history']['end']} ({data['history']['days']} days)")
    print(f"  series forecast: {data['series']} (with sales: {data['series_with_sales']})")
    print(f"  training rows per fit: {data['backtest']['training_rows']}, final fit {data['model']['training_rows']}")
    print(f"  {'level':<9} {'window':<25} {'series':>7} {'units':>12} {'baseline':>9} {'model':>7}")
    for level, score in data["backtest"]["levels"].items():
        for w in score["windows"]:
            window = f"{w['start']} .. {w['end']}"
            print(
                f"  {level:<9} {window:<25} {w['series']:>7,} {w['actual_units']:>12,.0f}"
                f" {_pct(w['baseline_wape']):>9} {_pct(w['model_wape']):>7}"
            )
        print(
            f"  {level:<9} {'all windows':<25} {score['series']:>7,} {score['actual_units']:>12,.0f}"
            f" {_pct(score['baseline_wape']):>9} {_pct(score['model_wape']):>7}"
        )
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in data["timings"].items())
    print(f"  forecast step {seconds:.1f} s wall ({timings})")
    print(f"  stock: {data['stock']}")


def online_retail() -> None:
    from patron.forecast import forecast_step
    from patron.ingest.service import run_import

    home = Path(tempfile.mkdtemp(prefix="patron-forecast-retail-"))
    try:
        runtime = runtime_for(home)
        run_import(runtime, "online-retail", DATA / "online_retail" / "online_retail.csv.gz")
        with runtime.warehouse(read_only=True) as warehouse:
            result, seconds = timed(lambda: forecast_step(warehouse, datetime(2011, 12, 10)))
        runtime.close()
        report("online-retail", result, seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def demo(members: int, seed: int, home: Path | None) -> None:
    from patron.analytics.build import default_as_of
    from patron.demo import generate_shop
    from patron.forecast import forecast_step
    from patron.ingest.service import import_batch

    workdir = home or Path(tempfile.mkdtemp(prefix="patron-forecast-demo-"))
    try:
        reuse = (workdir / "warehouse.duckdb").exists()
        runtime = runtime_for(workdir, create=not reuse)
        if reuse:  # read only: the shop may belong to another benchmark
            print(f"reusing the shop in {workdir}")
        else:
            batch, gen_s = timed(lambda: generate_shop(members, seed))
            _, import_s = timed(lambda: import_batch(runtime, "demo", "demo", lambda: batch))
            print(f"generated {members:,} members in {gen_s:.1f} s, imported in {import_s:.1f} s")
            del batch
        with runtime.warehouse(read_only=True) as warehouse:
            as_of = datetime.combine(default_as_of(warehouse), time())
            counts = {
                name: int(warehouse.table(name).count().execute()) for name in ("orders", "order_lines", "products")
            }
            result, seconds = timed(lambda: forecast_step(warehouse, as_of))
        runtime.close()
        print(f"orders {counts['orders']:,}, order lines {counts['order_lines']:,}, products {counts['products']:,}")
        report(f"demo shop ({members:,} members, seed {seed})", result, seconds)
    finally:
        if home is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, default=None, help="keep or reuse the demo shop here")
    parser.add_argument("--skip-retail", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args(argv)
    print(machine())
    if not args.skip_retail:
        with section("online-retail"):
            online_retail()
    if not args.skip_demo:
        with section("demo shop"):
            demo(args.members, args.seed, args.home)
    print(f"\npeak RSS {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
