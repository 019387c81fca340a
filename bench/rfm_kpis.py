"""RFM, segments and KPIs on a large demo shop: Patron's build against typical pandas code.

The demo shop (default 1M members, about 17M order lines) is generated and imported once into
``--home`` (kept between runs). Patron: ``build_profiles`` (RFM, scores, segments, Parquet artefacts)
plus the monthly KPI report. pandas: read the same tables from Parquet, then the code an analyst
writes: merge, ``groupby`` with lambdas, ``qcut``, ``apply`` for segments, monthly KPIs. The two
results are compared (segment counts must be equal). Run::

    .venv/bin/python bench/rfm_kpis.py --members 1000000 --home /tmp/patron-bench-1m
"""

from __future__ import annotations

import argparse
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import best_of, machine, peak_rss_mib, section, timed


def runtime_for(home: Path) -> Any:
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    return Runtime(Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY))


def prepare(home: Path, members: int, seed: int) -> None:
    from patron.demo import generate_shop
    from patron.ingest.service import import_batch

    if (home / "prepared").exists():
        print(f"reusing the demo shop in {home}")
        return
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    runtime = runtime_for(home)
    runtime.store.migrate()
    batch, gen_s = timed(lambda: generate_shop(members, seed))
    run, persist_s = timed(lambda: import_batch(runtime, "demo", "demo", lambda: batch))
    size = sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) / 2**20
    print(f"generate {gen_s:.1f} s, import {persist_s:.1f} s, data directory {size:,.0f} MiB; {run.entities}")
    with runtime.warehouse() as warehouse:
        for name in ("orders", "order_lines", "member_order"):
            warehouse.table(name).to_parquet(home / f"{name}.parquet")
    (home / "prepared").write_text(f"{gen_s:.1f} {persist_s:.1f} {size:.0f}\n")


def patron_build(home: Path, *, with_models: bool = False) -> dict[str, int]:
    from patron.analytics.artefacts import reader_for
    from patron.analytics.build import build_profiles
    from patron.analytics.service import kpi_report, segment_summary

    runtime = runtime_for(home)
    build_profiles(runtime, with_models=with_models)
    reader = reader_for(runtime.settings.artefact_dir)
    kpi_report(reader, None, None, "month")
    return {s.segment: s.members for s in segment_summary(reader).segments}


SEGMENTS = [
    ("hibernating", (1, 2), (1, 2)),
    ("at_risk", (1, 2), (3, 4)),
    ("cant_lose", (1, 2), (5,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("need_attention", (3,), (3,)),
    ("loyal_customers", (3, 4), (4, 5)),
    ("promising", (4,), (1,)),
    ("new_customers", (5,), (1,)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("champions", (5,), (4, 5)),
]


def segment(row: Any) -> str | None:
    for name, rs, fs in SEGMENTS:
        if row["R"] in rs and row["F"] in fs:
            return name
    return None


def pandas_rfm(home: Path) -> dict[str, int]:
    import pandas as pd

    orders = pd.read_parquet(home / "orders.parquet")
    lines = pd.read_parquet(home / "order_lines.parquet")
    order_rank = pd.read_parquet(home / "member_order.parquet")
    as_of = orders["ordered_at"].max().normalize() + timedelta(days=1)
    done = orders[(orders["status"] == "completed") & orders["member_key"].notna()]
    value = lines[~lines["returned"]].groupby("order_key")["amount"].sum().rename("value")
    df = done.merge(value, left_on="order_key", right_index=True, how="left").fillna({"value": 0.0})
    rfm = df.groupby("member_key").agg(
        last=("ordered_at", "max"),
        frequency=("order_key", lambda s: s.nunique()),
        monetary=("value", "sum"),
    )
    rfm["recency"] = (as_of - rfm["last"]).dt.total_seconds() // 86400
    rfm = rfm.join(order_rank.set_index("member_key")["source_rank"]).sort_values("source_rank")
    rfm["R"] = pd.qcut(rfm["recency"], 5, labels=[5, 4, 3, 2, 1]).astype(int)
    rfm["F"] = pd.qcut(rfm["frequency"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5]).astype(int)
    rfm["M"] = pd.qcut(rfm["monetary"], 5, labels=[1, 2, 3, 4, 5]).astype(int)
    rfm["segment"] = rfm.apply(segment, axis=1)
    # Monthly KPIs for the year before as-of.
    year = done[done["ordered_at"] >= as_of - timedelta(days=365)].copy()
    firsts = done.groupby("member_key")["ordered_at"].min()
    year["month"] = year["ordered_at"].dt.to_period("M")
    year["first_month"] = year["member_key"].map(firsts).dt.to_period("M")
    kpis = year.groupby("month").agg(
        gmv=("amount", "sum"),
        orders=("order_key", "count"),
        buyers=("member_key", lambda s: s.nunique()),
        new_buyers=("member_key", lambda s: s[year.loc[s.index, "first_month"] == s.name].nunique()),
    )
    repeat = year.groupby(["month", "member_key"]).size().groupby(level=0).apply(lambda s: (s >= 2).mean())
    kpis["repurchase_rate"] = repeat
    kpis["aov"] = kpis["gmv"] / kpis["orders"]
    return {str(k): int(v) for k, v in rfm["segment"].value_counts().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, default=Path("/tmp/patron-bench-shop"))
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}; started {datetime.now():%Y-%m-%d %H:%M}")
    with section(f"demo shop with {args.members:,} members"):
        prepare(args.home, args.members, args.seed)
    with section("Patron build (RFM, scores, segments, artefacts) + monthly KPI report"):
        ours, patron_s = best_of(args.runs, lambda: patron_build(args.home))
        print(f"best of {args.runs}: {patron_s:.2f} s")
    with section("Patron full build (also P(alive), expected orders and CLV for every member)"):
        _, full_s = best_of(1, lambda: patron_build(args.home, with_models=True))
        print(f"{full_s:.2f} s")
    with section("pandas: read Parquet, merge, groupby with lambdas, qcut, apply, monthly KPIs"):
        theirs, pandas_s = best_of(1, lambda: pandas_rfm(args.home))
        print(f"{pandas_s:.2f} s")
    assert ours == theirs, f"segment counts differ:\n{ours}\n{theirs}"
    print(f"\nRESULT full build with CLV: {full_s:.2f} s")
    print(
        f"RESULT rfm+kpis: patron {patron_s:.2f} s, pandas {pandas_s:.2f} s, "
        f"speed-up {pandas_s / patron_s:.1f}x; segments equal; peak RSS {peak_rss_mib():,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
