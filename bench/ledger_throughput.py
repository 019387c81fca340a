"""Points-ledger throughput with concurrent clients, anomalies checked after, beside a raw single-row UPDATE.

Each of ``--clients`` threads (32 by default) holds its own connection and runs
idempotent ledger operations (45 % earn, 35 % redeem, 10 % reverse, 10 % adjust)
through ``patron.loyalty.ledger_service`` against a hot set of ``--members``
members for ``--seconds``. A refused redemption (not enough points) is counted
but not as an operation. Afterwards the whole ledger is reconciled
(``ledger_anomalies``: must be empty) and the balances are checked against the
acknowledged operations. In the same run, the same number of threads do the raw
PostgreSQL baseline: ``UPDATE bench_ledger_raw SET n = n + 1 WHERE id = :random``
plus a commit, on as many rows as there are members (a scratch table, dropped after).

The PostgreSQL URL comes from ``--database-url``, else ``PATRON_BENCH_DATABASE_URL``,
else ``PATRON_TEST_DATABASE_URL``. The run adds its own members and references
(tagged with a run id) to that database; it deletes nothing. SQLite runs in a
temporary file. Run::

    .venv/bin/python bench/ledger_throughput.py [--database-url postgresql://...] [--clients 32] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from _common import machine, section
from sqlalchemy import create_engine, text

from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_schemas import AdjustRequest, EarnRequest, RedeemRequest, ReverseRequest
from patron.loyalty.ledger_service import adjust_points, earn_points, get_balance, redeem_points, reverse_points


@dataclass
class Counts:
    ops: int = 0
    refused: int = 0
    available: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(url: str, tag: str, members: list[str], n: int, deadline: float, counts: Counts) -> None:
    store, rng = OperationalStore(url), random.Random(n)
    ops = refused = 0
    seen: dict[str, int] = defaultdict(int)
    earned: list[str] = []
    try:
        while time.perf_counter() < deadline:
            member, key, roll = rng.choice(members), f"{tag}-{n}-{ops + refused}", rng.random()
            try:
                if roll < 0.45:
                    ref = f"{tag}-o-{n}-{ops}"
                    txn, _ = earn_points(
                        store, key, member, EarnRequest(points=rng.randint(10, 100), reference=ref), "b"
                    )
                    earned.append(ref)
                elif roll < 0.8:
                    body = RedeemRequest(points=rng.randint(1, 60), reference=f"{tag}-r-{n}-{ops}")
                    txn, _ = redeem_points(store, key, member, body, "bench")
                elif roll < 0.9 and earned:
                    body_r = ReverseRequest(reference=earned.pop(rng.randrange(len(earned))), reason="returned")
                    result, _ = reverse_points(store, key, body_r, "bench")
                    if result.reversal is None:
                        continue
                    txn = result.reversal
                else:
                    points = rng.choice([-1, 1]) * rng.randint(1, 20)
                    txn, _ = adjust_points(store, key, member, AdjustRequest(points=points, reason="bench"), "bench")
            except ConflictError:
                refused += 1
                continue
            ops += 1
            for entry in txn.entries:
                if entry.account.startswith("available:"):
                    seen[entry.account.partition(":")[2]] += entry.amount
    finally:
        store.dispose()
    with counts.lock:
        counts.ops += ops
        counts.refused += refused
        for member, amount in seen.items():
            counts.available[member] += amount


def ledger_run(url: str, clients: int, member_count: int, seconds: float) -> tuple[float, Counts, list[str]]:
    """Ops/s, the counts and every anomaly found after the run."""
    store = OperationalStore(url)
    store.migrate()
    tag = secrets.token_hex(4)
    members = [f"bench-{tag}-{i}" for i in range(member_count)]
    counts = Counts()
    deadline = time.perf_counter() + seconds
    threads = [threading.Thread(target=_client, args=(url, tag, members, n, deadline, counts)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    with store.session() as session:
        anomalies = ledger_anomalies(session)
    for member in members:  # no lost update: each balance is what the acknowledgements add up to
        have = get_balance(store, member).available
        if have != counts.available.get(member, 0):
            anomalies.append(f"{member}: balance {have}, acknowledged {counts.available.get(member, 0)}")
    store.dispose()
    return counts.ops / elapsed, counts, anomalies


def raw_update_rate(url: str, clients: int, rows: int, seconds: float) -> float:
    """Single-row UPDATE + commit per operation on a scratch table, ``clients`` threads."""
    engine = create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"), pool_size=clients + 1)
    table = f"bench_ledger_raw_{secrets.token_hex(3)}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id integer PRIMARY KEY, n bigint NOT NULL)"))
        conn.execute(text(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, {rows}) g"))
    done = [0] * clients
    deadline = time.perf_counter() + seconds

    def worker(n: int) -> None:
        rng = random.Random(n)
        with engine.connect() as conn:
            while time.perf_counter() < deadline:
                conn.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = :id"), {"id": rng.randint(1, rows)})
                conn.commit()
                done[n] += 1

    try:
        began = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = sum(done) / (time.perf_counter() - began)
        with engine.begin() as conn:
            total = conn.execute(text(f"SELECT sum(n) FROM {table}")).scalar_one()
        assert total == sum(done), "the raw baseline lost an update"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
    return rate


def _report(label: str, rate: float, counts: Counts, anomalies: list[str]) -> None:
    print(
        f"{label}: {rate:,.0f} ledger ops/s ({counts.ops:,} committed, {counts.refused:,} refused), "
        f"anomalies: {len(anomalies)}"
    )
    for anomaly in anomalies[:10]:
        print("  ", anomaly)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_url = os.environ.get("PATRON_BENCH_DATABASE_URL") or os.environ.get("PATRON_TEST_DATABASE_URL")
    parser.add_argument("--database-url", default=default_url, help="PostgreSQL URL (postgresql://...)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(machine())
    print(f"{args.clients} clients, {args.members} hot members, {args.seconds:g} s per run")
    if args.database_url:
        with section("PostgreSQL"):
            rate, counts, anomalies = ledger_run(args.database_url, args.clients, args.members, args.seconds)
            _report("ledger", rate, counts, anomalies)
            raw = raw_update_rate(args.database_url, args.clients, args.members, args.seconds)
            print(f"raw single-row UPDATE + commit: {raw:,.0f} /s; ledger is {rate / raw:.1%} of it")
    else:
        print("no PostgreSQL URL: give --database-url or set PATRON_BENCH_DATABASE_URL")
    if not args.skip_sqlite:
        with section("SQLite (WAL, one writer at a time)"), tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            rate, counts, anomalies = ledger_run(url, args.clients, args.members, args.seconds)
            _report("ledger", rate, counts, anomalies)


if __name__ == "__main__":
    main()
