"""Hypothesis state machine: the ledger always balances and equals the sum of live lots, like a simple model."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.loyalty import ledger
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.runtime import Runtime

MEMBERS = ("a", "b")


def _machine(store: OperationalStore) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        """Earn, redeem, adjust, reverse and activate at random; compare with a dict model."""

        def __init__(self) -> None:
            super().__init__()
            self.run = uuid.uuid4().hex[:8]
            self.available = dict.fromkeys(MEMBERS, 0)
            self.pending = dict.fromkeys(MEMBERS, 0)
            self.earns: dict[str, tuple[str, int, bool]] = {}  # reference -> member, points, pending
            self.serial = 0

        def key(self, member: str) -> str:
            return f"{self.run}-{member}"

        def ref(self) -> str:
            self.serial += 1
            return f"{self.run}-{self.serial}"

        @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 100), pending=st.booleans())
        def earn(self, member: str, points: int, pending: bool) -> None:
            reference = self.ref()
            until = utcnow() + timedelta(days=7) if pending else None
            with store.session() as s:
                ledger.earn(
                    s,
                    member_key=self.key(member),
                    points=points,
                    source="orders",
                    reference=reference,
                    expires_at=None,
                    pending_until=until,
                    actor="h",
                )
            (self.pending if pending else self.available)[member] += points
            self.earns[reference] = (member, points, pending)

        @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 150))
        def redeem(self, member: str, points: int) -> None:
            try:
                with store.session() as s:
                    ledger.redeem(
                        s, member_key=self.key(member), points=points, sink="shop", reference=self.ref(), actor="h"
                    )
            except ConflictError:
                assert points > self.available[member]
                return
            assert points <= self.available[member]
            self.available[member] -= points

        @rule(member=st.sampled_from(MEMBERS), points=st.integers(-50, 50).filter(bool))
        def adjust(self, member: str, points: int) -> None:
            try:
                with store.session() as s:
                    ledger.adjust(s, member_key=self.key(member), points=points, reason="property", actor="h")
            except ConflictError:
                assert -points > self.available[member]
                return
            self.available[member] += points

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            if not self.earns:
                return
            reference = data.draw(st.sampled_from(sorted(self.earns)))
            member, points, pending = self.earns.pop(reference)
            with store.session() as s:
                txn = ledger.reverse(s, reference=reference, actor="h", reason="returned")
            assert txn is not None
            if pending:
                self.pending[member] -= points
            else:
                taken = min(points, self.available[member])
                assert (txn.points, txn.shortfall) == (taken, points - taken)
                self.available[member] -= taken

        @rule()
        def activate(self) -> None:
            with store.session() as s:
                ledger.activate_due(s, utcnow() + timedelta(days=8))
            for member in MEMBERS:
                self.available[member] += self.pending[member]
                self.pending[member] = 0
            self.earns = {r: (m, p, False) for r, (m, p, _) in self.earns.items()}

        @invariant()
        def matches_the_model_and_reconciles(self) -> None:
            with store.session() as s:
                for member in MEMBERS:
                    balance = ledger.balance(s, self.key(member))
                    assert (balance.available, balance.pending) == (self.available[member], self.pending[member])
                    assert (
                        sum(
                            lot.remaining
                            for lot in ledger.lots(s, self.key(member))
                            if lot.status in ("active", "pending")
                        )
                        == balance.available + balance.pending
                    )
                assert ledger_anomalies(s) == []

    return LedgerMachine


@pytest.mark.slow
def test_the_ledger_behaves_like_the_model(runtime: Runtime) -> None:
    run_state_machine_as_test(
        _machine(runtime.store),
        settings=settings(
            max_examples=12, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
