"""Points-ledger throughput with concurrent clients, anomalies checked after, beside a raw single-row UPDATE.

The clients are ``--processes`` worker processes (4 by default) of ``--threads``
threads each (8 by default): 32 clients, each with a connection of its own, as a
deployment with a few API worker processes would hold them (processes, so that
the clients do not share one interpreter lock). Each client runs idempotent
ledger operations (45 % earn, 35 % redeem, 10 % reverse of one of its earlier
earns, 10 % adjust) through ``patron.loyalty.ledger_service`` against a hot set
of ``--members`` members for ``--seconds``. A refused redemption or debit (not
enough points) is counted but not as an operation. Afterwards the whole ledger
is reconciled (``ledger_anomalies``: must be empty) and every balance is checked
against the acknowledged operations.

In the same run, the same processes and threads do the raw PostgreSQL baseline:
``UPDATE bench_ledger_raw SET n = n + 1 WHERE id = :random`` in autocommit
through psycopg (one statement, one commit, one round trip, as a ledger
operation is), on as many rows as there are members (a scratch table, dropped
after).

The PostgreSQL URL comes from ``--database-url``, else ``PATRON_BENCH_DATABASE_URL``,
else ``PATRON_TEST_DATABASE_URL``. The run adds its own members and references
(tagged with a run id) to that database; it deletes nothing. SQLite runs in a
temporary file. Run::

    .venv/bin/python bench/ledger_throughput.py [--database-url postgresql://...] [--processes 4] [--threads 8]
        [--seconds 20] [--rounds 3] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import secrets
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from _common import cpu_ticks, machine, named_cpu, section, steal_share

from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_schemas import (
    AdjustRequest,
    EarnRequest,
    RedeemRequest,
    ReverseRequest,
)
from patron.loyalty.ledger_service import adjust_points, earn_points, get_balance, redeem_points, reverse_points


@dataclass
class Counts:
    """What one process's clients were told, summed."""

    ops: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    available: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    finished: float = 0.0
    cpu: float = 0.0  # seconds of CPU the client processes used while the clients ran
    server_cpu: float = 0.0  # seconds of CPU the database server's processes used meanwhile (a local server)

    def add(self, other: Counts) -> None:
        self.ops.update(other.ops)
        self.refused += other.refused
        for member, amount in other.available.items():
            self.available[member] += amount
        for kind, values in other.latencies.items():
            self.latencies[kind] += values
        self.finished = max(self.finished, other.finished)
        self.cpu += other.cpu
        self.server_cpu += other.server_cpu


def _one(store: OperationalStore, rng: random.Random, key: str, member: str, ref: str, earned: list[str]) -> Any:
    """One operation: (kind, transaction or None)."""
    roll = rng.random()
    if roll < 0.45:
        txn, _ = earn_points(store, key, member, EarnRequest(points=rng.randint(10, 100), reference=ref), "bench")
        earned.append(ref)
        return "earn", txn
    if roll < 0.8:
        txn, _ = redeem_points(store, key, member, RedeemRequest(points=rng.randint(1, 60), reference=ref), "bench")
        return "redeem", txn
    if roll < 0.9 and earned:
        body = ReverseRequest(reference=earned.pop(rng.randrange(len(earned))), reason="returned")
        result, _ = reverse_points(store, key, body, "bench")
        return "reverse", result.reversal
    points = rng.choice([-1, 1]) * rng.randint(1, 20)
    txn, _ = adjust_points(store, key, member, AdjustRequest(points=points, reason="bench"), "bench")
    return "adjust", txn


def _ledger_client(url: str, tag: str, members: list[str], n: int, deadline: float, counts: Counts) -> None:
    store, rng = OperationalStore(url), random.Random(n)
    mine, earned, step = Counts(), list[str](), 0
    try:
        while (began := time.monotonic()) < deadline:
            step += 1
            member, key = rng.choice(members), f"{tag}-{n}-{step}"
            try:
                kind, txn = _one(store, rng, key, member, f"{tag}-{n}-{step}", earned)
            except ConflictError:
                mine.refused += 1
                continue
            mine.latencies[kind].append(time.monotonic() - began)
            if txn is None:
                continue
            mine.ops[kind] += 1
            for entry in txn.entries:
                if entry.account.startswith("available:"):
                    mine.available[entry.account.partition(":")[2]] += entry.amount
    finally:
        mine.finished = time.monotonic()
        store.dispose()
    counts.add(mine)


def _libpq(url: str) -> str:
    """The URL as libpq reads it (without SQLAlchemy's driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _raw_client(url: str, table: str, rows: int, n: int, deadline: float, counts: Counts) -> None:
    import psycopg

    rng, done = random.Random(n), 0
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (rng.randint(1, rows),))
            done += 1
    counts.add(Counts(ops=Counter(update=done), finished=time.monotonic()))


def _process(job: str, args: tuple[Any, ...], first: int, threads: int, ready: Barrier, start: Any, out: Any) -> None:
    """One worker process: ``threads`` clients, started together at the time the parent sets."""
    counts, lock = Counts(), threading.Lock()

    def run(n: int) -> None:
        mine = Counts()
        client: Any = _ledger_client if job == "ledger" else _raw_client
        client(*args, n, start.value, mine)
        with lock:
            counts.add(mine)

    ready.wait()  # every process imported and ready
    ready.wait()  # the parent has set the deadline
    before = resource.getrusage(resource.RUSAGE_SELF)
    workers = [threading.Thread(target=run, args=(first + t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    counts.cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    out.put(counts)


def _run(job: str, args: tuple[Any, ...], processes: int, threads: int, seconds: float) -> tuple[float, Counts]:
    """Run ``job`` in ``processes`` x ``threads`` clients for ``seconds``; returns ops/s and the summed counts."""
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Barrier(processes + 1), ctx.Value("d", 0.0), ctx.Queue()
    workers = [
        ctx.Process(target=_process, args=(job, args, p * threads, threads, ready, start, out))
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    ready.wait()
    server = named_cpu("postgres")
    began = time.monotonic()
    start.value = began + seconds
    ready.wait()
    total = Counts()
    for _ in workers:
        total.add(out.get())
    for worker in workers:
        worker.join()
    total.server_cpu = named_cpu("postgres") - server
    return sum(total.ops.values()) / (total.finished - began), total


def ledger_run(
    url: str, processes: int, threads: int, member_count: int, seconds: float
) -> tuple[float, Counts, list[str]]:
    """Ops/s, the counts and every anomaly found after the run."""
    store = OperationalStore(url)
    store.migrate()
    tag = secrets.token_hex(4)
    members = [f"bench-{tag}-{i}" for i in range(member_count)]
    rate, counts = _run("ledger", (url, tag, members), processes, threads, seconds)
    with store.session() as session:
        anomalies = ledger_anomalies(session)
    for member in members:  # no lost update: each balance is what the acknowledgements add up to
        have = get_balance(store, member).available
        if have != counts.available.get(member, 0):
            anomalies.append(f"{member}: balance {have}, acknowledged {counts.available.get(member, 0)}")
    store.dispose()
    return rate, counts, anomalies


def raw_update_rate(url: str, processes: int, threads: int, rows: int, seconds: float) -> tuple[float, Counts]:
    """Single-row UPDATE in autocommit per operation on a scratch table, as many clients as the ledger run."""
    import psycopg

    table = f"bench_ledger_raw_{secrets.token_hex(3)}"
    url = _libpq(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, n bigint NOT NULL)")
        conn.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, {rows}) g")
    try:
        rate, counts = _run("raw", (url, table, rows), processes, threads, seconds)
        with psycopg.connect(url) as conn:
            total = conn.execute(f"SELECT sum(n) FROM {table}").fetchone()
        assert total is not None and total[0] == counts.ops["update"], "the raw baseline lost an update"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return rate, counts


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def _report(label: str, rate: float, counts: Counts, anomalies: list[str], steal: float, server: bool = True) -> None:
    done = sum(counts.ops.values())
    summary = f"{done:,} committed, {counts.refused:,} refused, steal {steal:.0%}"
    print(f"{label}: {rate:,.0f} ledger ops/s ({summary}), anomalies: {len(anomalies)}")
    calls = max(done + counts.refused, 1)
    used = f"   CPU per operation: clients {counts.cpu * 1000 / calls:.2f} ms"
    if server:
        used += f", database server {counts.server_cpu * 1000 / calls:.2f} ms (0 when it is not on this machine)"
    print(used)
    for kind in ("earn", "redeem", "reverse", "adjust"):
        took = counts.latencies.get(kind, [])
        print(
            f"   {kind:8} {counts.ops[kind]:>7,}  latency p50 {_percentile(took, 0.5):6.1f} ms"
            f"  p99 {_percentile(took, 0.99):6.1f} ms  max {_percentile(took, 1.0):6.1f} ms"
        )
    for anomaly in anomalies[:10]:
        print("  ", anomaly)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_url = os.environ.get("PATRON_BENCH_DATABASE_URL") or os.environ.get("PATRON_TEST_DATABASE_URL")
    parser.add_argument("--database-url", default=default_url, help="PostgreSQL URL (postgresql://...)")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="client threads per process")
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="PostgreSQL runs (ledger then raw); medians reported")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(machine())
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    clients = args.processes * args.threads
    print(
        f"{clients} clients ({args.processes} processes x {args.threads} threads), {args.members} hot members, "
        f"{args.seconds:g} s per run"
    )
    if args.database_url:
        with section(f"PostgreSQL, {args.rounds} round(s): the ledger, then the raw baseline"):
            rates, raws = [], []
            for round_ in range(1, args.rounds + 1):
                ticks = cpu_ticks()
                rate, counts, anomalies = ledger_run(
                    args.database_url, args.processes, args.threads, args.members, args.seconds
                )
                _report(f"round {round_} ledger", rate, counts, anomalies, steal_share(ticks, cpu_ticks()))
                ticks = cpu_ticks()
                raw, done = raw_update_rate(args.database_url, args.processes, args.threads, args.members, args.seconds)
                updates = max(done.ops["update"], 1)
                print(
                    f"round {round_} raw single-row UPDATE (autocommit): {raw:,.0f} /s (steal"
                    f" {steal_share(ticks, cpu_ticks()):.0%}); ledger is {rate / raw:.1%} of it\n"
                    f"   CPU per update: clients {done.cpu * 1000 / updates:.2f} ms, database server"
                    f" {done.server_cpu * 1000 / updates:.2f} ms"
                )
                rates.append(rate)
                raws.append(raw)
            print(
                f"median: ledger {statistics.median(rates):,.0f} ops/s, raw {statistics.median(raws):,.0f} /s,"
                f" ledger / raw {statistics.median(r / b for r, b in zip(rates, raws, strict=True)):.1%}"
            )
    else:
        print("no PostgreSQL URL: give --database-url or set PATRON_BENCH_DATABASE_URL")
    if not args.skip_sqlite:
        with section("SQLite (WAL, one writer at a time)"), tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            ticks = cpu_ticks()
            rate, counts, anomalies = ledger_run(url, args.processes, args.threads, args.members, args.seconds)
            _report("ledger", rate, counts, anomalies, steal_share(ticks, cpu_ticks()), server=False)


if __name__ == "__main__":
    main()
