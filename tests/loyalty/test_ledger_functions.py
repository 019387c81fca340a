"""On PostgreSQL the ledger's writes are database functions: they must write exactly what the Python path writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.db.idempotency import run_idempotent
from patron.errors import ConflictError
from patron.loyalty import ledger
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_schemas import EarnRequest, RedeemRequest
from patron.loyalty.ledger_service import earn_points, redeem_points
from patron.runtime import Runtime

Earn = Callable[..., Any]


class _Path:
    """One way of writing: the Python statements (``pyth``) or the PostgreSQL functions (``func``)."""

    def __init__(self, store: OperationalStore, tag: str) -> None:
        self.store, self.tag, self.member = store, tag, f"mem-{tag}"
        self.errors: list[str] = []
        python = tag == "pyth"
        self._earn: Earn = ledger.python_earn if python else ledger.earn
        self._redeem: Earn = ledger.python_redeem if python else ledger.redeem
        self._adjust: Earn = ledger.python_adjust if python else ledger.adjust

    def _run(self, write: Callable[[Session], object]) -> None:
        try:
            with self.store.session() as s:
                write(s)
        except ConflictError as exc:
            self.errors.append(str(exc).replace(self.tag, "X"))

    def earn(self, points: int, ref: str, expires_at: datetime | None, pending_until: datetime | None = None) -> None:
        self._run(
            lambda s: self._earn(
                s,
                member_key=self.member,
                points=points,
                source="orders",
                reference=f"{self.tag}-{ref}",
                expires_at=expires_at,
                pending_until=pending_until,
                actor="test",
            )
        )

    def redeem(self, points: int, ref: str) -> None:
        self._run(
            lambda s: self._redeem(
                s, member_key=self.member, points=points, sink="checkout", reference=f"{self.tag}-{ref}", actor="t"
            )
        )

    def adjust(self, points: int) -> None:
        self._run(lambda s: self._adjust(s, member_key=self.member, points=points, reason="goodwill", actor="admin"))

    def reverse(self, ref: str) -> None:
        self._run(lambda s: ledger.reverse(s, reference=f"{self.tag}-{ref}", actor="test", reason="returned"))

    def idempotent(self, scope: str, key: str, points: int, ref: str) -> tuple[dict[str, Any], bool]:
        """A keyed write: the service (functions on PostgreSQL) or :func:`run_idempotent` around the Python path."""
        reference = f"{self.tag}-{ref}"
        if self.tag == "func":
            if scope == "points.earn":
                txn, replayed = earn_points(
                    self.store, key, self.member, EarnRequest(points=points, reference=reference), "k"
                )
            else:
                txn, replayed = redeem_points(
                    self.store, key, self.member, RedeemRequest(points=points, reference=reference), "k"
                )
            return txn.model_dump(mode="json"), replayed
        body: EarnRequest | RedeemRequest
        if scope == "points.earn":
            body = EarnRequest(points=points, reference=reference)
            request = {**body.model_dump(mode="json"), "member_key": self.member}
            return run_idempotent(
                self.store,
                scope,
                key,
                request,
                lambda s: ledger.python_earn(s, member_key=self.member, actor="k", **body.model_dump()).model_dump(
                    mode="json"
                ),
            )
        body = RedeemRequest(points=points, reference=reference)
        request = {**body.model_dump(mode="json"), "member_key": self.member}
        return run_idempotent(
            self.store,
            scope,
            key,
            request,
            lambda s: ledger.python_redeem(s, member_key=self.member, actor="k", **body.model_dump()).model_dump(
                mode="json"
            ),
        )


def _rows(store: OperationalStore, tag: str) -> dict[str, Any]:
    """Everything the member's writes left, with ids as ordinals and the tag masked, without wall-clock times."""
    member = f"mem-{tag}"
    with store.engine.connect() as conn:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql), {"m": member})]

        txns = [r[0] for r in query("SELECT id FROM ledger_transactions WHERE member_key = :m ORDER BY id")]
        lots = [r[0] for r in query("SELECT id FROM points_lots WHERE member_key = :m ORDER BY id")]
        t_of, l_of = {t: n for n, t in enumerate(txns)}, {lot: n for n, lot in enumerate(lots)}

        def mask(value: Any) -> Any:
            return value.replace(tag, "X") if isinstance(value, str) else value

        return {
            "transactions": [
                tuple(mask(v) for v in r)
                for r in query(
                    "SELECT kind, member_key, reference, natural_key, points, shortfall, actor, memo"
                    " FROM ledger_transactions WHERE member_key = :m ORDER BY id"
                )
            ],
            "entries": [
                (t_of[r[0]], *(mask(v) for v in r[1:]))
                for r in query(
                    "SELECT e.transaction_id, e.account_type, e.account_name, e.amount FROM ledger_entries e"
                    " JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.member_key = :m ORDER BY e.id"
                )
            ],
            "lots": [
                (t_of[r[0]], *r[1:])
                for r in query(
                    "SELECT transaction_id, source, points, remaining, status, pending_until, expires_at"
                    " FROM points_lots WHERE member_key = :m ORDER BY id"
                )
            ],
            "allocations": [
                (t_of[r[0]], l_of[r[1]], r[2])
                for r in query(
                    "SELECT a.transaction_id, a.lot_id, a.points FROM lot_allocations a"
                    " JOIN points_lots l ON l.id = a.lot_id WHERE l.member_key = :m ORDER BY a.id"
                )
            ],
            "wallet": query(
                "SELECT available, pending, lifetime_earned, lifetime_redeemed FROM points_wallets"
                " WHERE member_key = :m"
            ),
            "keys": [
                (r[0], r[1], r[2] is not None)
                for r in query(
                    "SELECT scope, replace(key, :m, 'X'), response FROM idempotency_records"
                    " WHERE key LIKE :m || '%' ORDER BY id"
                )
            ],
        }


def test_the_database_functions_write_what_the_python_path_writes(runtime: Runtime) -> None:
    store = runtime.store
    if store.dialect != "postgresql":
        pytest.skip("the ledger functions exist on PostgreSQL only")
    now = utcnow()
    soon, later, much_later = now + timedelta(seconds=2), now + timedelta(days=10), now + timedelta(days=30)
    paths = [_Path(store, "pyth"), _Path(store, "func")]
    responses: dict[str, list[tuple[dict[str, Any], bool]]] = {p.tag: [] for p in paths}

    def each(step: Callable[[_Path], None]) -> None:
        for path in paths:
            step(path)

    each(lambda p: p.earn(100, "o1", much_later))
    each(lambda p: p.earn(50, "o2", later))
    each(lambda p: p.earn(40, "o3", None))
    each(lambda p: p.earn(30, "o4", now + timedelta(days=60), pending_until=soon))
    each(lambda p: p.earn(20, "o5", soon))
    each(lambda p: p.adjust(15))
    each(lambda p: p.redeem(60, "r1"))  # o5 (earliest expiry), then 40 of o2
    each(lambda p: p.earn(25, "o6", soon))
    each(lambda p: p.earn(5, "o1", None))  # the reference was earned already
    time.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.3)
    each(lambda p: p.redeem(30, "r2"))  # settles first: o4 activates, o6 expires
    each(lambda p: p.adjust(-5))
    each(lambda p: p.redeem(10_000, "r3"))  # not enough points
    each(lambda p: p.redeem(1, "r1"))  # the reference was redeemed already
    each(lambda p: p.reverse("o1"))
    for path in paths:
        key = f"{path.member}-k1"
        responses[path.tag].append(path.idempotent("points.earn", key, 12, "o7"))
        responses[path.tag].append(path.idempotent("points.earn", key, 12, "o7"))
        responses[path.tag].append(path.idempotent("points.redeem", f"{path.member}-k2", 7, "r4"))
        with pytest.raises(ConflictError, match="different request"):
            path.idempotent("points.earn", key, 13, "o7")

    python, functions = _rows(store, "pyth"), _rows(store, "func")
    assert functions == python
    assert len(python["transactions"]) == 15
    assert paths[1].errors == paths[0].errors
    assert len(paths[0].errors) == 3
    for (first, replayed), (other, other_replayed) in zip(responses["pyth"], responses["func"], strict=True):
        assert replayed == other_replayed
        masked = {k: v for k, v in first.items() if k not in ("id", "created_at")}
        assert {k: v for k, v in other.items() if k not in ("id", "created_at")} == {
            k: v.replace("pyth", "func") if isinstance(v, str) else v for k, v in masked.items()
        } | {"entries": [{**e, "account": e["account"].replace("pyth", "func")} for e in first["entries"]]}
    assert [r for _, r in responses["func"]] == [False, True, False]
    assert responses["func"][1][0] == responses["func"][0][0]
    with store.session() as s:
        assert ledger_anomalies(s) == []
