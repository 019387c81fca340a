"""Retention: each category loses exactly what is past its period; dry runs change nothing; runs are audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.conftest import make_settings
from tests.retention.conftest import Planted, count

from patron.audit.models import AuditEntry
from patron.auth.models import OperatorSession
from patron.db.idempotency import IdempotencyRecord
from patron.errors import SettingsError, ValidationError
from patron.ingest.models import QuarantinedRow
from patron.keys.models import MemberDataKey
from patron.loyalty.jobs import run_due
from patron.loyalty.ledger_service import get_balance
from patron.loyalty.program_models import JobRun
from patron.members.models import MemberIdentity, VaultEntry
from patron.members.vault_store import read_personal
from patron.recs.registry_models import RecEvent, RecFeedback
from patron.retention.schedule import recent_runs, retention_due, retention_now
from patron.retention.service import PURGED, periods, policies, run_retention
from patron.runtime import Runtime


def _column(runtime: Runtime, column: object) -> set[str]:
    with runtime.store.session() as session:
        return {str(value) for value in session.scalars(select(column))}  # type: ignore[call-overload]


def _events(runtime: Runtime) -> set[str]:
    with runtime.warehouse(read_only=True) as warehouse:
        return set(warehouse.table("events").event_key.to_pyarrow().to_pylist())


REMAINING: dict[str, Callable[[Runtime], set[str]]] = {
    "behaviour_events": _events,
    "rec_events": lambda rt: _column(rt, RecEvent.idempotency_key),
    "rec_feedback": lambda rt: _column(rt, RecFeedback.item_id),
    "operator_sessions": lambda rt: {h.rstrip("0") for h in _column(rt, OperatorSession.token_hash)},
    "idempotency_records": lambda rt: _column(rt, IdempotencyRecord.key),
    "quarantined_rows": lambda rt: _column(rt, QuarantinedRow.raw),
    "inactive_members": lambda rt: _column(rt, MemberIdentity.member_key),
}


def _snapshot(runtime: Runtime) -> dict[str, set[str]]:
    return {name: remaining(runtime) for name, remaining in REMAINING.items()}


def test_every_purged_category_is_walked() -> None:
    assert set(REMAINING) == set(PURGED)


@pytest.mark.parametrize("category", PURGED)
def test_a_category_loses_what_is_past_its_period_and_keeps_the_rest(
    category: str, planted: Planted, runtime: Runtime
) -> None:
    before = _snapshot(runtime)

    report = run_retention(runtime, only=[category], now=planted.now)

    after = _snapshot(runtime)
    outcome = [(r.category, r.affected, r.error) for r in report.results]
    assert outcome == [(category, len(planted.gone[category]), None)]
    assert planted.gone[category] <= before[category]
    assert not planted.gone[category] & after[category]
    assert planted.kept[category] <= after[category]
    assert after[category] == before[category] - planted.gone[category]
    for other in set(PURGED) - {category}:
        assert after[other] == before[other], other


def test_inactive_members_are_anonymized_as_an_erasure_and_their_orders_stay(
    planted: Planted, runtime: Runtime
) -> None:
    (lapsed,) = planted.gone["inactive_members"]
    assert read_personal(runtime.store, runtime.cipher, lapsed) is not None

    run_retention(runtime, only=["inactive_members"], now=planted.now)

    assert read_personal(runtime.store, runtime.cipher, lapsed) is None
    assert count(runtime, VaultEntry) == 0 and count(runtime, MemberDataKey) == 0  # the data key is shredded too
    assert lapsed not in _column(runtime, MemberIdentity.member_key)
    with runtime.warehouse(read_only=True) as warehouse:
        orders = warehouse.table("orders")
        kept = orders.filter(orders.member_key == lapsed).order_key.to_pyarrow().to_pylist()
    assert kept == ["o-lapsed"]  # the financial record stays, under a key nobody can link any more
    assert planted.kept["inactive_members"] <= _column(runtime, MemberIdentity.member_key)


def test_a_member_whose_only_sign_of_life_is_points_earned_is_kept(planted: Planted, runtime: Runtime) -> None:
    earned = planted.members["earned"]
    assert get_balance(runtime.store, earned).available == 5

    run_retention(runtime, now=planted.now)

    assert earned in _column(runtime, MemberIdentity.member_key)


def test_a_dry_run_counts_what_would_go_and_changes_nothing(planted: Planted, runtime: Runtime) -> None:
    before = _snapshot(runtime)
    audited, runs = count(runtime, AuditEntry), count(runtime, JobRun)

    report = run_retention(runtime, dry_run=True, now=planted.now)

    assert report.dry_run
    assert {r.category: r.affected for r in report.results} == {name: len(planted.gone[name]) for name in PURGED}
    assert _snapshot(runtime) == before
    assert (count(runtime, AuditEntry), count(runtime, JobRun)) == (audited, runs)
    assert read_personal(runtime.store, runtime.cipher, next(iter(planted.gone["inactive_members"]))) is not None


def test_a_run_is_recorded_and_audited_with_its_counts(planted: Planted, runtime: Runtime) -> None:
    run, report = retention_now(runtime, "cli:tester", now=planted.now)

    expected = {name: len(planted.gone[name]) for name in PURGED}
    assert report is not None and {r.category: r.affected for r in report.results} == expected
    total = sum(expected.values())
    assert (run.name, run.trigger, run.status, run.result) == ("retention", "manual", "succeeded", total)
    with runtime.store.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")).one()
    assert entry.actor == "cli:tester"
    assert entry.details == {"counts": expected}
    assert [r.id for r in recent_runs(runtime)] == [run.id]


def test_the_scheduled_run_takes_its_slot_once_and_rides_on_the_scheduler(planted: Planted, runtime: Runtime) -> None:
    slot_time = planted.now.replace(hour=2, minute=30, second=0, microsecond=0)
    now = slot_time + timedelta(days=1, minutes=1)

    first = retention_due(runtime, now)
    again = retention_due(runtime, now + timedelta(hours=3))
    through_scheduler = [r.name for r in run_due(runtime, now + timedelta(days=1))]

    assert first is not None and (first.trigger, first.status, first.slot) == (
        "schedule",
        "succeeded",
        (slot_time + timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ"),
    )
    assert again is None
    assert "retention" in through_scheduler
    with runtime.store.session() as session:
        actors = list(session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "retention.run")))
    assert actors == ["system:retention", "system:retention"]


def test_a_schedule_switched_off_never_runs(runtime: Runtime) -> None:
    off = Runtime(runtime.settings.model_copy(update={"retention_schedule": "off"}))

    assert retention_due(off) is None
    assert count(runtime, JobRun) == 0


def test_a_busy_warehouse_fails_its_categories_and_the_others_still_run(planted: Planted, runtime: Runtime) -> None:
    with runtime.warehouse():  # another writer holds the embedded warehouse
        run, report = retention_now(runtime, "cli:tester", now=planted.now)

    assert report is not None
    assert set(report.errors) == {"behaviour_events", "inactive_members"}
    assert all("another Patron process" in error for error in report.errors.values())
    assert not planted.gone["rec_events"] & _column(runtime, RecEvent.idempotency_key)
    assert planted.gone["behaviour_events"] <= _events(runtime)
    assert run.status == "failed" and run.error is not None and "behaviour_events" in run.error
    with runtime.store.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")).one()
    assert set(entry.details["errors"]) == {"behaviour_events", "inactive_members"}
    assert entry.details["counts"]["rec_events"] == 1


def test_periods_default_and_are_overridden_by_settings(tmp_path: object) -> None:
    settings = make_settings(tmp_path).model_copy(update={"retention_days": {"rec_events": 10}})  # type: ignore[arg-type]

    found = {p.category: p for p in policies(settings)}

    assert periods(settings)["rec_events"] == 10
    assert found["rec_events"].default_days == 395
    assert found["audit_log"].action == "keep" and found["audit_log"].days is None and found["audit_log"].note
    assert found["orders"].cutoff is None
    for bad in ({"audit_log": 10}, {"events": 10}):
        with pytest.raises(SettingsError, match="has no period"):
            periods(settings.model_copy(update={"retention_days": bad}))


def test_an_unknown_category_is_refused_before_anything_runs(planted: Planted, runtime: Runtime) -> None:
    before = _snapshot(runtime)

    with pytest.raises(ValidationError) as refused:
        retention_now(runtime, "cli:tester", only=["rec_events", "audit_log"], now=planted.now)

    assert refused.value.field == "category" and "audit_log" in str(refused.value)
    assert _snapshot(runtime) == before
    assert count(runtime, JobRun) == 0
