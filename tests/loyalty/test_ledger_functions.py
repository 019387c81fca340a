"""On PostgreSQL the ledger's writes are database functions: they must write exactly what the Python path writes.

Earn, redeem, adjust and reverse run twice, once through the Python statements
(the reference, used on SQLite) and once through the PostgreSQL functions, for
two members of their own; every row each path leaves must be the same.
"""

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
from patron.loyalty.ledger_schemas import EarnRequest, RedeemRequest, ReverseRequest, ReverseResult
from patron.loyalty.ledger_service import earn_points, redeem_points, reverse_points
from patron.runtime import Runtime

Earn = Callable[..., Any]


class _Path:
    """One way of writing: the Python statements (``pyth``) or the PostgreSQL functions (``func``)."""

    def __init__(self, store: OperationalStore, tag: str) -> None:
        self.store, self.tag, self.member, self.other = store, tag, f"mem-{tag}", f"mem-{tag}-b"
        self.errors: list[str] = []
        self.reversals: list[dict[str, Any] | None] = []
        python = tag == "pyth"
        self._earn: Earn = ledger.python_earn if python else ledger.earn
        self._redeem: Earn = ledger.python_redeem if python else ledger.redeem
        self._adjust: Earn = ledger.python_adjust if python else ledger.adjust
        self._reverse: Earn = ledger.python_reverse if python else ledger.reverse

    def _run(self, write: Callable[[Session], object]) -> None:
        try:
            with self.store.session() as s:
                write(s)
        except ConflictError as exc:
            self.errors.append(str(exc).replace(self.tag, "X"))

    def earn(
        self,
        points: int,
        ref: str,
        expires_at: datetime | None,
        pending_until: datetime | None = None,
        *,
        other: bool = False,
    ) -> None:
        self._run(
            lambda s: self._earn(
                s,
                member_key=self.other if other else self.member,
                points=points,
                source="orders",
                reference=f"{self.tag}-{ref}",
                expires_at=expires_at,
                pending_until=pending_until,
                actor="test",
            )
        )

    def redeem(self, points: int, ref: str, *, other: bool = False) -> None:
        self._run(
            lambda s: self._redeem(
                s,
                member_key=self.other if other else self.member,
                points=points,
                sink="checkout",
                reference=f"{self.tag}-{ref}",
                actor="t",
            )
        )

    def adjust(self, points: int) -> None:
        self._run(lambda s: self._adjust(s, member_key=self.member, points=points, reason="goodwill", actor="admin"))

    def reverse(self, ref: str) -> None:
        def write(s: Session) -> None:
            txn = self._reverse(s, reference=f"{self.tag}-{ref}", actor="test", reason="returned")
            self.reversals.append(None if txn is None else txn.model_dump(mode="json"))

        self._run(write)

    def reverse_once(self, key: str, ref: str, reason: str = "returned") -> tuple[dict[str, Any], bool]:
        """A keyed reversal: the service (a function on PostgreSQL) or :func:`run_idempotent` around the Python path."""
        body = ReverseRequest(reference=f"{self.tag}-{ref}", reason=reason)
        if self.tag == "func":
            result, replayed = reverse_points(self.store, f"{self.member}-{key}", body, "k")
            return result.model_dump(mode="json"), replayed

        def action(s: Session) -> dict[str, Any]:
            txn = ledger.python_reverse(s, reference=body.reference, actor="k", reason=body.reason)
            return ReverseResult(reversal=txn).model_dump(mode="json")

        return run_idempotent(
            self.store, "points.reverse", f"{self.member}-{key}", body.model_dump(mode="json"), action
        )

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


def _masked(value: Any, tag: str) -> Any:
    """A response with the tag masked and without ids and wall-clock times (which differ between the paths)."""
    if isinstance(value, dict):
        return {k: _masked(v, tag) for k, v in value.items() if k not in ("id", "created_at")}
    if isinstance(value, list):
        return [_masked(v, tag) for v in value]
    return value.replace(tag, "X") if isinstance(value, str) else value


def _rows(store: OperationalStore, tag: str) -> dict[str, Any]:
    """Everything the path's members' writes left, with ids as ordinals and the tag masked, without wall-clock times."""
    member = f"mem-{tag}%"
    with store.engine.connect() as conn:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql), {"m": member, "t": tag})]

        txns = [r[0] for r in query("SELECT id FROM ledger_transactions WHERE member_key LIKE :m ORDER BY id")]
        lots = [r[0] for r in query("SELECT id FROM points_lots WHERE member_key LIKE :m ORDER BY id")]
        t_of, l_of = {t: n for n, t in enumerate(txns)}, {lot: n for n, lot in enumerate(lots)}

        def mask(value: Any) -> Any:
            return value.replace(tag, "X") if isinstance(value, str) else value

        return {
            "transactions": [
                tuple(mask(v) for v in r)
                for r in query(
                    "SELECT kind, member_key, reference, natural_key, points, shortfall, actor, memo"
                    " FROM ledger_transactions WHERE member_key LIKE :m ORDER BY id"
                )
            ],
            "entries": [
                (t_of[r[0]], *(mask(v) for v in r[1:]))
                for r in query(
                    "SELECT e.transaction_id, e.account_type, e.account_name, e.amount FROM ledger_entries e"
                    " JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.member_key LIKE :m ORDER BY e.id"
                )
            ],
            "lots": [
                (t_of[r[0]], mask(r[1]), *r[2:])
                for r in query(
                    "SELECT transaction_id, member_key, source, points, remaining, status, pending_until, expires_at"
                    " FROM points_lots WHERE member_key LIKE :m ORDER BY id"
                )
            ],
            "allocations": [
                (t_of[r[0]], l_of[r[1]], r[2])
                for r in query(
                    "SELECT a.transaction_id, a.lot_id, a.points FROM lot_allocations a"
                    " JOIN points_lots l ON l.id = a.lot_id WHERE l.member_key LIKE :m ORDER BY a.id"
                )
            ],
            "wallet": query(
                "SELECT replace(member_key, :t, 'X'), available, pending, lifetime_earned, lifetime_redeemed"
                " FROM points_wallets WHERE member_key LIKE :m ORDER BY member_key"
            ),
            "keys": [
                (r[0], r[1], _masked(r[2], tag))
                for r in query(
                    "SELECT scope, replace(key, :t, 'X'), response FROM idempotency_records"
                    " WHERE key LIKE :m ORDER BY id"
                )
            ],
        }


def test_the_database_functions_write_what_the_python_path_writes(runtime: Runtime) -> None:
    store = runtime.store
    if store.dialect != "postgresql":
        pytest.skip("the ledger functions exist on PostgreSQL only")
    now = utcnow()
    # the writes before the sleep must all land before `soon`, however slow the machine
    soon, later, much_later = now + timedelta(seconds=6), now + timedelta(days=10), now + timedelta(days=30)
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
    each(lambda p: p.redeem(5, "r0"))  # 5 of o6 (now the earliest expiry)
    each(lambda p: p.earn(5, "o1", None))  # the reference was earned already
    each(lambda p: p.earn(12, "p9", soon + timedelta(milliseconds=100), pending_until=soon))
    time.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.3)
    each(lambda p: p.redeem(30, "r2"))  # settles first: o4 and p9 activate, p9's 12 and o6's 20 left expire
    each(lambda p: p.adjust(-5))
    each(lambda p: p.redeem(10_000, "r3"))  # not enough points
    each(lambda p: p.redeem(1, "r1"))  # the reference was redeemed already
    each(lambda p: p.reverse("o1"))  # what is left of o1, the rest clawed back from other lots
    each(lambda p: p.reverse("r1"))  # spanned two lots: o5's part expired meanwhile (to expiry), o2's comes back
    each(lambda p: p.reverse("r1"))  # reversed already: nothing left to reverse
    each(lambda p: p.reverse("nothing"))  # an unknown reference
    each(lambda p: p.reverse("o6"))  # 20 of its 25 expired: only the 5 spent are clawed back, from other lots
    each(lambda p: p.earn(40, "o7", None, pending_until=much_later))
    each(lambda p: p.reverse("o7"))  # still pending: cancelled
    each(lambda p: p.earn(20, "o8", now + timedelta(days=1)))
    each(lambda p: p.redeem(30, "r5"))  # all of o8 (earliest expiry), then 10 of o2
    each(lambda p: p.reverse("o8"))  # o8 is empty: its 20 are clawed back from o2
    each(lambda p: p.reverse("r5"))  # o8 was cancelled: its 20 come back as a new lot, o2's 10 into o2
    each(lambda p: p.earn(30, "x1", later))
    each(lambda p: p.redeem(45, "x1"))  # an order paid partly with points, its own among them
    each(lambda p: p.reverse("x1"))  # the redemption is refunded first, then the earn clawed back
    each(lambda p: p.earn(60, "x2", None, other=True))
    each(lambda p: p.redeem(50, "b1", other=True))
    each(lambda p: p.redeem(15, "x2"))  # one reference, two members
    each(lambda p: p.reverse("x2"))  # both wallets locked; the second member's earn falls 50 short
    each(lambda p: p.reverse("o3"))  # a partial return: the order is reversed...
    each(lambda p: p.earn(25, "o3-kept", None))  # ...and what the kept part earns is earned again
    for path in paths:
        key = f"{path.member}-k1"
        responses[path.tag].append(path.idempotent("points.earn", key, 12, "o9"))
        responses[path.tag].append(path.idempotent("points.earn", key, 12, "o9"))
        responses[path.tag].append(path.idempotent("points.redeem", f"{path.member}-k2", 7, "r4"))
        with pytest.raises(ConflictError, match="different request"):
            path.idempotent("points.earn", key, 13, "o9")
        responses[path.tag].append(path.reverse_once("k3", "o2"))
        responses[path.tag].append(path.reverse_once("k3", "o2"))  # replayed, not reversed twice
        responses[path.tag].append(path.reverse_once("k4", "nothing"))
        responses[path.tag].append(path.reverse_once("k4", "nothing"))  # "nothing to reverse", replayed
        with pytest.raises(ConflictError, match="different request"):
            path.reverse_once("k3", "o2", reason="another reason")

    python, functions = _rows(store, "pyth"), _rows(store, "func")
    assert functions == python
    assert paths[1].errors == paths[0].errors
    assert len(paths[0].errors) == 3
    assert [_masked(r, "func") for r in paths[1].reversals] == [_masked(r, "pyth") for r in paths[0].reversals]
    for (first, replayed), (other, other_replayed) in zip(responses["pyth"], responses["func"], strict=True):
        assert replayed == other_replayed
        assert _masked(other, "func") == _masked(first, "pyth")
    assert [r for _, r in responses["func"]] == [False, True, False, False, True, False, True]
    assert responses["func"][1][0] == responses["func"][0][0]
    assert responses["func"][4][0] == responses["func"][3][0] and responses["func"][3][0]["reversal"] is not None
    assert responses["func"][5][0] == responses["func"][6][0] == {"reversal": None}
    # the scenario does what its comments say (on the reference path, hence on both)
    kinds = [r[0] for r in python["transactions"]]
    assert kinds.count("reverse") == 10 and kinds.count("expire") == 1 and kinds.count("activate") == 1
    reversals = paths[0].reversals
    assert [r is None for r in reversals] == [False, False, True, True] + [False] * 7
    by_ref = {r["reference"].removeprefix("pyth-"): r for r in reversals if r is not None}
    assert {e["account"] for e in by_ref["r1"]["entries"]} == {"sink:checkout", "expiry:expiry", "available:mem-pyth"}
    assert (by_ref["x2"]["member_key"], by_ref["x2"]["points"], by_ref["x2"]["shortfall"]) == ("mem-pyth-b", 25, 50)
    assert by_ref["o7"]["entries"] == [
        {"account": "pending:mem-pyth", "amount": -40},
        {"account": "source:orders", "amount": 40},
    ]
    new_lots = [lot for lot in python["lots"] if python["transactions"][lot[0]][0] == "reverse"]
    assert [(lot[2], lot[3]) for lot in new_lots] == [("orders", 20)]  # o8's 20 came back as a new lot
    with store.session() as s:
        assert ledger_anomalies(s) == []
