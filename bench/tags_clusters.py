"""Behaviour tags, cluster features and member clusters on a large demo shop.

Reads a demo warehouse prepared by ``bench/rfm_kpis.py`` (``--home``, opened read-only and left as it
is); without one, generates a shop with ``--members`` members into an in-memory DuckDB. Times, each as
wall-clock and CPU seconds of this process (the machine may be shared):

- ``behaviour_tags`` computed in the warehouse and fetched as Arrow;
- ``cluster_features`` computed in the warehouse and fetched as Arrow;
- ``cluster_members`` (k chosen by silhouette on a 10,000-member sample, k-means over all members);
- a rebuild with the first build's summary as ``previous``, on the members in another row order
  (ids must be identical) and without 1 % of the members (the share keeping their id is printed).

Run::

    .venv/bin/python bench/tags_clusters.py --home /tmp/patron-bench-1m
    .venv/bin/python bench/tags_clusters.py --members 200000
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _common import machine, peak_rss_mib, section

T = TypeVar("T")


def measured(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return value, wall


@contextmanager
def warehouse(home: Path | None, members: int, seed: int) -> Iterator[Any]:
    """An Ibis connection holding orders, order_lines and products."""
    from patron.warehouse.store import connect_duckdb

    path = home / "warehouse.duckdb" if home is not None else None
    if path is not None and path.exists():
        print(f"reading the demo warehouse in {home} (read-only)")
        con = connect_duckdb(str(path), read_only=True)
    else:
        from patron.demo import generate_shop

        print(f"generating a demo shop with {members:,} members (seed {seed}) into an in-memory DuckDB")
        batch = generate_shop(members, seed)
        con = connect_duckdb()
        for name in ("orders", "order_lines", "products"):
            frame = batch.frame(name)
            assert frame is not None
            # The demo's member source ids stand in for member keys: the analytics only group by them.
            con.create_table(name, frame.rename({"member_source_id": "member_key"}, strict=False).to_arrow())
    try:
        yield con
    finally:
        con.disconnect()


def kept_share(first: pa.Table, second: pa.Table) -> float:
    """Share of the members of ``second`` with the same cluster id as in ``first``."""
    joined = second.join(first, "member_key", right_suffix="_first")
    same = pc.sum(pc.equal(joined.column("cluster"), joined.column("cluster_first"))).as_py()
    return float(same) / max(second.num_rows, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/patron-bench-1m"))
    parser.add_argument("--members", type=int, default=1_000_000, help="members of a generated shop")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=datetime(2026, 1, 1))
    args = parser.parse_args()

    from patron.analytics.clusters import cluster_features, cluster_members
    from patron.tags.behaviour import behaviour_tags

    print(f"machine: {machine()}; started {datetime.now():%Y-%m-%d %H:%M}; load average {os.getloadavg()[0]:.1f}")
    with warehouse(args.home, args.members, args.seed) as con:
        orders, lines, products = con.table("orders"), con.table("order_lines"), con.table("products")
        print(f"{orders.count().execute():,} orders, {lines.count().execute():,} order lines")
        with section("behaviour tags and cluster features (warehouse, fetched as Arrow)"):
            tags, tags_s = measured(
                "behaviour_tags", lambda: behaviour_tags(orders, lines, products, args.as_of).to_pyarrow()
            )
            features, features_s = measured(
                "cluster_features", lambda: cluster_features(orders, lines, products, args.as_of).to_pyarrow()
            )
    print(f"{tags.num_rows:,} members tagged; {features.num_rows:,} members with features")
    for column in ("price_band", "discount_sensitivity", "main_channel"):
        counts = {row["values"]: row["counts"] for row in pc.value_counts(tags.column(column)).to_pylist()}
        print(f"  {column}: {dict(sorted(counts.items(), key=lambda kv: str(kv[0])))}")
    for column in ("preferred_weekday", "preferred_hour"):
        print(f"  {column} set for {1 - tags.column(column).null_count / max(tags.num_rows, 1):.1%} of members")

    with section("clusters"):
        result, cluster_s = measured("cluster_members", lambda: cluster_members(features))
        print(f"k = {result.k}; silhouette by k: " + ", ".join(f"{k}: {s:.3f}" for k, s in result.silhouette.items()))
        for cluster in result.clusters:
            share = f"{cluster.share:5.1%}"
            print(f"  {cluster.id}: {cluster.size:>9,} ({share}) {cluster.description} {list(cluster.traits)}")
        summary = result.summary()
        shuffled = features.take(np.random.default_rng(1).permutation(features.num_rows))
        again, _ = measured("rebuild, rows in another order", lambda: cluster_members(shuffled, summary))
        assert kept_share(result.labels, again.labels) == 1.0, "a permuted rebuild changed ids"
        fewer = features.filter(pc.greater(pc.random(features.num_rows, initializer=2), 0.01))
        later, _ = measured("rebuild without 1 % of the members", lambda: cluster_members(fewer, summary))
        print(
            f"ids identical after the permuted rebuild; {kept_share(result.labels, later.labels):.2%} of members keep "
            f"their id without 1 % of members (k {result.k} -> {later.k})"
        )

    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    total = tags_s + features_s + cluster_s
    print(
        f"\nRESULT tags {tags_s:.2f} s, features {features_s:.2f} s, clusters {cluster_s:.2f} s "
        f"(features + clusters {features_s + cluster_s:.2f} s, all {total:.2f} s); peak RSS {peak_rss_mib():,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
