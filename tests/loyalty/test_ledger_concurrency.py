"""32 concurrent clients, each with its own connection, hammer the same few members.

Runs on the configured store (SQLite by default, PostgreSQL when
PATRON_TEST_DATABASE_URL is set). Afterwards: no negative balance, no reference
redeemed twice, every transaction balances, wallet = entries = live lots, and no
lost update: each member's balance is exactly the sum of what the acknowledged
operations reported.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_models import LedgerTransaction, PointsWallet
from patron.loyalty.ledger_schemas import (
    AdjustRequest,
    EarnRequest,
    LedgerTransactionRead,
    RedeemRequest,
    ReverseRequest,
)
from patron.loyalty.ledger_service import adjust_points, earn_points, redeem_points, reverse_points
from patron.runtime import Runtime

CLIENTS = 32
MEMBERS = ("hot-a", "hot-b", "hot-c")
SHARED_REDEMPTIONS = 6  # references every client tries to redeem: each may succeed once


@dataclass
class Tally:
    """What the clients were told."""

    acknowledged: list[LedgerTransactionRead] = field(default_factory=list)
    replays: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, txn: LedgerTransactionRead | None, replayed: bool) -> None:
        with self.lock:
            if replayed:
                self.replays += 1
            elif txn is not None:
                self.acknowledged.append(txn)


def _one_op(store: OperationalStore, rng: random.Random, client: int, step: int, tally: Tally) -> None:
    member = rng.choice(MEMBERS)
    key = f"c{client}-s{step}"
    roll = rng.random()
    if roll < 0.4:
        body = EarnRequest(points=rng.randint(1, 60), source="orders", reference=f"order-{client}-{step}")
        tally.ok(*earn_points(store, key, member, body, "client"))
        if rng.random() < 0.3:  # a retry of the same request: replayed, never applied twice
            tally.ok(*earn_points(store, key, member, body, "client"))
    elif roll < 0.75:
        shared = rng.random() < 0.3
        reference = f"shared-{member}-{rng.randrange(SHARED_REDEMPTIONS)}" if shared else f"basket-{client}-{step}"
        tally.ok(*redeem_points(store, key, member, RedeemRequest(points=rng.randint(1, 40), reference=reference), "c"))
    elif roll < 0.9:
        earlier = f"order-{client}-{rng.randrange(max(step, 1))}"
        result, replayed = reverse_points(store, key, ReverseRequest(reference=earlier, reason="returned"), "client")
        tally.ok(result.reversal, replayed)
    else:
        points = rng.choice([-1, 1]) * rng.randint(1, 20)
        tally.ok(*adjust_points(store, key, member, AdjustRequest(points=points, reason="correction"), "support"))


def _client(url: str, client: int, operations: int, barrier: threading.Barrier, tally: Tally) -> None:
    store = OperationalStore(url)  # a connection of its own
    rng = random.Random(client)
    try:
        barrier.wait()
        for step in range(operations):
            try:
                _one_op(store, rng, client, step, tally)
            except ConflictError as exc:
                with tally.lock:
                    tally.refused[str(exc).split(" ")[0]] += 1
    except BaseException as exc:
        with tally.lock:
            tally.errors.append(exc)
    finally:
        store.dispose()


def _expected_balances(acknowledged: list[LedgerTransactionRead]) -> dict[str, int]:
    expected: dict[str, int] = defaultdict(int)
    for txn in acknowledged:
        for entry in txn.entries:
            kind, _, name = entry.account.partition(":")
            if kind == "available":
                expected[name] += entry.amount
    return expected


@pytest.mark.slow
def test_concurrent_clients_keep_every_invariant(runtime: Runtime) -> None:
    operations = 20 if runtime.store.dialect == "postgresql" else 10
    for member in MEMBERS:  # some points to fight over
        earn_points(runtime.store, f"seed-{member}", member, EarnRequest(points=200, reference=f"seed-{member}"), "t")
    tally = Tally()
    barrier = threading.Barrier(CLIENTS)
    threads = [
        threading.Thread(target=_client, args=(runtime.store.url, c, operations, barrier, tally))
        for c in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert tally.errors == []
    assert len(tally.acknowledged) > CLIENTS * operations // 2
    with runtime.store.session() as s:
        assert ledger_anomalies(s) == []
        wallets = {w.member_key: w.available for w in s.scalars(select(PointsWallet))}
        stored = s.scalar(select(func.count()).select_from(LedgerTransaction))
        redeemed = Counter(s.scalars(select(LedgerTransaction.reference).where(LedgerTransaction.kind == "redeem")))
    assert all(points >= 0 for points in wallets.values())
    assert max(redeemed.values()) == 1
    # no lost and no phantom update: the seeds plus exactly the acknowledged transactions are stored...
    assert stored == len(MEMBERS) + len(tally.acknowledged)
    # ...and each balance is what the acknowledgements add up to
    seeds = {member: 200 for member in MEMBERS}
    expected = _expected_balances(tally.acknowledged)
    assert wallets == {m: seeds[m] + expected.get(m, 0) for m in MEMBERS}
    assert tally.replays > 0
    shared = [t for t in tally.acknowledged if t.kind == "redeem" and (t.reference or "").startswith("shared-")]
    assert len(shared) <= len(MEMBERS) * SHARED_REDEMPTIONS
