"""The points ledger: balanced double entry, FIFO lots, pending window, returns, expiry, append-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, ValidationError
from patron.loyalty import ledger
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_schemas import BalanceRead, LedgerTransactionRead
from patron.runtime import Runtime

NOW = utcnow()


def _earn(store: OperationalStore, member: str, points: int, ref: str, **kw: object) -> LedgerTransactionRead:
    args: dict[str, object] = {"expires_at": None, "pending_until": None, "source": "orders", "actor": "test"}
    args.update(kw)
    with store.session() as s:
        return ledger.earn(s, member_key=member, points=points, reference=ref, **args)  # type: ignore[arg-type]


def _redeem(store: OperationalStore, member: str, points: int, ref: str) -> LedgerTransactionRead:
    with store.session() as s:
        return ledger.redeem(s, member_key=member, points=points, sink="checkout", reference=ref, actor="test")


def _balance(store: OperationalStore, member: str) -> BalanceRead:
    with store.session() as s:
        return ledger.balance(s, member)


def _sound(store: OperationalStore) -> None:
    with store.session() as s:
        assert ledger_anomalies(s) == []


def test_earn_is_a_balanced_transaction_into_a_lot(runtime: Runtime) -> None:
    txn = _earn(runtime.store, "m-1", 120, "order-1", expires_at=NOW + timedelta(days=90))

    assert txn.kind == "earn" and txn.points == 120
    assert sorted((e.account, e.amount) for e in txn.entries) == [("available:m-1", 120), ("source:orders", -120)]
    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.pending, balance.lifetime_earned) == (120, 0, 120)
    with runtime.store.session() as s:
        (lot,) = ledger.lots(s, "m-1")
    assert (lot.points, lot.remaining, lot.status) == (120, 120, "active")
    _sound(runtime.store)


def test_redeem_consumes_earliest_expiring_lots_first(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 100, "late", expires_at=NOW + timedelta(days=300))
    _earn(runtime.store, "m-1", 50, "never")
    _earn(runtime.store, "m-1", 30, "soon", expires_at=NOW + timedelta(days=10))

    _redeem(runtime.store, "m-1", 60, "basket-1")

    with runtime.store.session() as s:
        by_ref = {lot.points: lot for lot in ledger.lots(s, "m-1")}
    assert (by_ref[30].remaining, by_ref[30].status) == (0, "consumed")
    assert by_ref[100].remaining == 70
    assert by_ref[50].remaining == 50  # no expiry: spent last
    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.lifetime_redeemed, balance.expiring_soon) == (120, 60, 0)
    _sound(runtime.store)


def test_redeem_beyond_the_balance_is_a_conflict_and_writes_nothing(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 40, "order-1")

    with pytest.raises(ConflictError, match="40 available"):
        _redeem(runtime.store, "m-1", 41, "basket-1")

    assert _balance(runtime.store, "m-1").available == 40
    _sound(runtime.store)


def test_a_reference_is_earned_and_redeemed_once(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 40, "order-1")
    _redeem(runtime.store, "m-1", 10, "order-1")

    with pytest.raises(ConflictError):
        _earn(runtime.store, "m-2", 40, "order-1")
    with pytest.raises(ConflictError):
        _redeem(runtime.store, "m-1", 10, "order-1")

    assert _balance(runtime.store, "m-1").available == 30
    _sound(runtime.store)


def test_pending_points_activate_after_the_window(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 80, "order-1", pending_until=NOW + timedelta(days=14))
    assert (_balance(runtime.store, "m-1").available, _balance(runtime.store, "m-1").pending) == (0, 80)
    with pytest.raises(ConflictError):
        _redeem(runtime.store, "m-1", 1, "basket-1")

    with runtime.store.session() as s:
        assert ledger.activate_due(s, NOW + timedelta(days=13)) == 0
    with runtime.store.session() as s:
        assert ledger.activate_due(s, NOW + timedelta(days=15)) == 1
    with runtime.store.session() as s:
        assert ledger.activate_due(s, NOW + timedelta(days=15)) == 0

    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.pending) == (80, 0)
    _sound(runtime.store)


def test_returning_a_pending_order_cancels_its_points(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 80, "order-1", pending_until=NOW + timedelta(days=14))

    with runtime.store.session() as s:
        reversal = ledger.reverse(s, reference="order-1", actor="test", reason="returned")

    assert reversal is not None and reversal.points == 80 and reversal.shortfall == 0
    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.pending, balance.lifetime_earned) == (0, 0, 0)
    with runtime.store.session() as s:
        assert [lot.status for lot in ledger.lots(s, "m-1")] == ["cancelled"]
        assert ledger.reverse(s, reference="order-1", actor="test", reason="again") is None
        assert ledger.activate_due(s, NOW + timedelta(days=15)) == 0
    _sound(runtime.store)


def test_returning_claws_back_spent_points_from_other_lots_and_records_the_shortfall(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 100, "order-1", expires_at=NOW + timedelta(days=5))
    _earn(runtime.store, "m-1", 30, "order-2", expires_at=NOW + timedelta(days=50))
    _redeem(runtime.store, "m-1", 90, "basket-1")  # 90 from order-1's lot

    with runtime.store.session() as s:
        reversal = ledger.reverse(s, reference="order-1", actor="test", reason="returned")

    assert reversal is not None
    assert (reversal.points, reversal.shortfall) == (40, 60)  # 10 from its lot, 30 from order-2's, 60 short
    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.lifetime_earned) == (0, 30)
    _sound(runtime.store)


def test_reversing_a_redemption_restores_the_lots_it_spent(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 100, "order-1", expires_at=NOW + timedelta(days=5))
    _redeem(runtime.store, "m-1", 70, "order-9")

    with runtime.store.session() as s:
        reversal = ledger.reverse(s, reference="order-9", actor="test", reason="order cancelled")

    assert reversal is not None and reversal.points == 70
    assert sorted((e.account, e.amount) for e in reversal.entries) == [("available:m-1", 70), ("sink:checkout", -70)]
    balance = _balance(runtime.store, "m-1")
    assert (balance.available, balance.lifetime_redeemed) == (100, 0)
    with runtime.store.session() as s:
        (lot,) = ledger.lots(s, "m-1")
    assert (lot.remaining, lot.status) == (100, "active")
    _sound(runtime.store)


def test_reversing_an_order_refunds_its_redemption_before_clawing_back_its_earn(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 50, "old")
    _redeem(runtime.store, "m-1", 50, "order-1")
    _earn(runtime.store, "m-1", 20, "order-1")

    with runtime.store.session() as s:
        reversal = ledger.reverse(s, reference="order-1", actor="test", reason="returned")

    assert reversal is not None and reversal.shortfall == 0
    assert _balance(runtime.store, "m-1").available == 50
    _sound(runtime.store)


def test_expiry_moves_what_remains_to_the_expiry_account(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 100, "order-1", expires_at=NOW + timedelta(days=10))
    _earn(runtime.store, "m-2", 10, "order-2", expires_at=NOW + timedelta(days=10))
    _earn(runtime.store, "m-1", 5, "order-3")
    _redeem(runtime.store, "m-1", 30, "basket-1")
    assert _balance(runtime.store, "m-1").expiring_soon == 70
    seen: list[tuple[int, int]] = []

    expired = ledger.expire_due(runtime.store, NOW + timedelta(days=11), lambda done, total: seen.append((done, total)))

    assert expired == 2 and seen == [(1, 2), (2, 2)]
    assert _balance(runtime.store, "m-1").available == 5
    assert _balance(runtime.store, "m-2").available == 0
    assert ledger.expire_due(runtime.store, NOW + timedelta(days=11)) == 0
    with runtime.store.session() as s:
        kinds = [t.kind for t in ledger.history(s, "m-1", 1, 10).items]
    assert kinds == ["expire", "redeem", "earn", "earn"]
    _sound(runtime.store)


def test_adjustments_need_a_reason_and_never_overdraw(runtime: Runtime) -> None:
    with runtime.store.session() as s:
        credit = ledger.adjust(s, member_key="m-1", points=25, reason="goodwill", actor="admin")
    assert sorted((e.account, e.amount) for e in credit.entries) == [
        ("adjustment:adjustment", -25),
        ("available:m-1", 25),
    ]
    with pytest.raises(ValidationError) as bad, runtime.store.session() as s:
        ledger.adjust(s, member_key="m-1", points=5, reason=" ", actor="admin")
    assert bad.value.field == "reason"
    with pytest.raises(ConflictError), runtime.store.session() as s:
        ledger.adjust(s, member_key="m-1", points=-26, reason="correction", actor="admin")
    with runtime.store.session() as s:
        ledger.adjust(s, member_key="m-1", points=-20, reason="correction", actor="admin")
    assert _balance(runtime.store, "m-1").available == 5
    _sound(runtime.store)


def test_earned_between_counts_earned_points_not_reversed(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 100, "order-1")
    _earn(runtime.store, "m-1", 40, "order-2", pending_until=NOW + timedelta(days=3))
    _earn(runtime.store, "m-1", 7, "order-3")
    with runtime.store.session() as s:
        ledger.reverse(s, reference="order-3", actor="test", reason="returned")
        ledger.adjust(s, member_key="m-1", points=9, reason="goodwill", actor="admin")

    with runtime.store.session() as s:
        assert ledger.earned_between(s, "m-1", NOW - timedelta(days=1), NOW + timedelta(days=1)) == 140
        assert ledger.earned_between(s, "m-1", NOW + timedelta(days=1), NOW + timedelta(days=2)) == 0


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "ünï"])
def test_member_keys_are_opaque_safe_strings(runtime: Runtime, bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        _earn(runtime.store, bad, 1, "order-1")
    assert error.value.field == "member_key"


@pytest.mark.parametrize("points", [0, -1, 10**10])
def test_points_are_positive_whole_numbers(runtime: Runtime, points: int) -> None:
    with pytest.raises(ValidationError) as error:
        _earn(runtime.store, "m-1", points, "order-1")
    assert error.value.field == "points"


@pytest.mark.parametrize("table", ["ledger_entries", "ledger_transactions", "lot_allocations"])
def test_the_ledger_is_append_only(runtime: Runtime, table: str) -> None:
    _earn(runtime.store, "m-1", 10, "order-1")
    _redeem(runtime.store, "m-1", 4, "basket-1")

    for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
        with pytest.raises(DatabaseError, match="append-only"), runtime.store.session() as s:
            s.execute(text(statement))
    _sound(runtime.store)


def test_the_database_refuses_a_negative_wallet(runtime: Runtime) -> None:
    _earn(runtime.store, "m-1", 10, "order-1")

    with pytest.raises(DatabaseError), runtime.store.session() as s:
        s.execute(text("UPDATE points_wallets SET available = available - 11 WHERE member_key = 'm-1'"))


def test_postgresql_refuses_an_unbalanced_transaction(runtime: Runtime) -> None:
    if runtime.store.dialect != "postgresql":
        pytest.skip("the commit-time balance trigger exists on PostgreSQL; SQLite relies on the service and audit")
    txn = _earn(runtime.store, "m-1", 10, "order-1")

    with pytest.raises(DatabaseError, match="does not balance"), runtime.store.session() as s:
        s.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)"
                " VALUES (:t, 'available', 'm-1', 5)"
            ),
            {"t": txn.id},
        )
    _sound(runtime.store)
