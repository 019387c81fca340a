"""Time the demo shop generator and, optionally, persisting its batch.

Usage::

    .venv/bin/python bench/demo_generate.py --members 100000 --seed 1
    .venv/bin/python bench/demo_generate.py --members 100000 --persist

Reports rows per table, wall time and peak RSS of the process (ru_maxrss,
so persisting includes the generator's peak). ``--persist`` imports the
batch with ``import_batch`` into a fresh temporary PATRON_HOME and reports
the import time and the size of the data directory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from patron.demo import generate_shop
from patron.ingest.contract import Entity, ParsedBatch

ENTITIES: tuple[Entity, ...] = ("members", "products", "orders", "order_lines", "events")


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def report_batch(batch: ParsedBatch, seconds: float) -> None:
    total = 0
    for entity in ENTITIES:
        frame = batch.frame(entity)
        rows = 0 if frame is None else frame.height
        total += rows
        size = 0 if frame is None else frame.estimated_size("mb")
        print(f"  {entity:<12} {rows:>12,} rows  {size:>9,.0f} MB in memory")
    print(f"  {'total':<12} {total:>12,} rows")
    print(f"generate: {seconds:,.1f} s wall, peak RSS {peak_rss_mib():,.0f} MiB")


def persist(batch: ParsedBatch, home: Path) -> None:
    # Imported here so that the generation figures do not include these modules' import cost.
    from patron.ingest.service import import_batch
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    settings = Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY)
    home.mkdir(parents=True, exist_ok=True)
    runtime = Runtime(settings)
    try:
        runtime.store.migrate()
        began = time.perf_counter()
        run = import_batch(runtime, "demo", "demo", lambda: batch)
        elapsed = time.perf_counter() - began
    finally:
        runtime.close()
    print(f"persist: {elapsed:,.1f} s wall, status {run.status}, {run.rows_imported:,} lines imported")
    print(f"  entities {run.entities}")
    print(f"  data directory {directory_size(home) / 2**20:,.0f} MiB, peak RSS {peak_rss_mib():,.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--event-window-days", type=int, default=None, help="default: the generator's")
    parser.add_argument("--persist", action="store_true", help="also import into a temporary PATRON_HOME")
    parser.add_argument("--keep", action="store_true", help="keep the temporary PATRON_HOME")
    args = parser.parse_args(argv)

    print(f"demo shop: {args.members:,} members, seed {args.seed}")
    began = time.perf_counter()
    if args.event_window_days is None:
        batch = generate_shop(args.members, args.seed)
    else:
        batch = generate_shop(args.members, args.seed, event_window_days=args.event_window_days)
    report_batch(batch, time.perf_counter() - began)
    if args.persist:
        home = Path(tempfile.mkdtemp(prefix="patron-demo-")) / "home"
        try:
            persist(batch, home)
        finally:
            if args.keep:
                print(f"  kept {home}")
            else:
                shutil.rmtree(home.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
