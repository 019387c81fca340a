"""Scheduled jobs: slots, concurrent callers, progress, failures and the real work they do."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from patron.errors import NotFoundError, ValidationError
from patron.loyalty import ledger
from patron.loyalty.earning import OrderIn
from patron.loyalty.jobs import JOBS, latest_slot, list_jobs, list_runs, parse_spec, run_due, run_now, set_schedule
from patron.loyalty.program import record_order
from patron.loyalty.program_models import JobRun
from patron.loyalty.program_rules import EarningRuleCreate, create_rule
from patron.promotions.coupons import issue_coupon, member_coupons
from patron.promotions.models import Coupon
from patron.promotions.schemas import TemplateCreate
from patron.promotions.templates import create_template
from patron.runtime import Runtime

MEMBER = "m00000000000000e5"
NOW = datetime(2026, 11, 11, 3, 30, tzinfo=UTC)


def test_specs_name_hourly_and_daily_slots() -> None:
    assert latest_slot(parse_spec("hourly at :05"), NOW) == datetime(2026, 11, 11, 3, 5, tzinfo=UTC)
    assert latest_slot(parse_spec("hourly at :45"), NOW) == datetime(2026, 11, 11, 2, 45, tzinfo=UTC)
    assert latest_slot(parse_spec("daily at 03:00"), NOW) == datetime(2026, 11, 11, 3, 0, tzinfo=UTC)
    assert latest_slot(parse_spec("daily at 23:59"), NOW) == datetime(2026, 11, 10, 23, 59, tzinfo=UTC)
    for bad in ("every day", "daily at 24:00", "hourly at 5"):
        with pytest.raises(ValidationError):
            parse_spec(bad)


def test_jobs_have_default_schedules(runtime: Runtime) -> None:
    jobs = {job.name: job for job in list_jobs(runtime.store, NOW)}

    assert {name: job.spec for name, job in jobs.items()} == {
        "points-activation": "hourly at :05",
        "points-expiry": "daily at 00:30",
        "tier-reevaluation": "daily at 03:00",
        "coupon-expiry": "daily at 00:45",
    }
    assert jobs["tier-reevaluation"].next_run_at == datetime(2026, 11, 12, 3, 0, tzinfo=UTC)


def test_each_slot_runs_once_under_concurrent_callers(runtime: Runtime) -> None:
    barrier = threading.Barrier(4)
    made: list[list[str]] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            made.append([run.name for run in run_due(runtime, NOW)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # the loyalty jobs; other domains' jobs running under the scheduler (retention) are theirs to test
    assert sorted(name for names in made for name in names if name in JOBS) == [
        "coupon-expiry",
        "points-activation",
        "points-expiry",
        "tier-reevaluation",
    ]
    with runtime.store.session() as session:
        runs = list(session.scalars(select(JobRun).where(JobRun.name.in_(JOBS))))
    assert len(runs) == 4 and {r.status for r in runs} == {"succeeded"}
    assert [r.name for r in run_due(runtime, NOW + timedelta(minutes=10)) if r.name in JOBS] == []  # same slots
    assert [r.name for r in run_due(runtime, NOW + timedelta(hours=1)) if r.name in JOBS] == ["points-activation"]


def test_a_disabled_or_rescheduled_job_follows_its_schedule(runtime: Runtime) -> None:
    set_schedule(runtime.store, "points-expiry", enabled=False)
    set_schedule(runtime.store, "coupon-expiry", enabled=False)
    set_schedule(runtime.store, "tier-reevaluation", spec="daily at 04:00")

    ran = [r.name for r in run_due(runtime, NOW) if r.name in JOBS]

    assert ran == ["points-activation", "tier-reevaluation"]
    assert list_runs(runtime.store, "tier-reevaluation")[0].slot == "2026-11-10T04:00Z"
    with pytest.raises(NotFoundError):
        set_schedule(runtime.store, "member-day", enabled=False)


def test_the_jobs_activate_and_expire_points_and_record_progress(runtime: Runtime) -> None:
    create_rule(runtime.store, EarningRuleCreate(name="base", kind="base", points_per_unit=Decimal(1)), "test")
    paid = datetime.now(UTC) - timedelta(days=1)
    placed = OrderIn.model_validate(
        {"order_key": "o", "member_key": MEMBER, "paid_at": paid, "lines": [{"sku": "s", "amount": "40"}]}
    )
    record_order(runtime.store, placed, "k", "test")

    activated = run_now(runtime.store, "points-activation", now=paid + timedelta(days=8))
    with runtime.store.session() as session:
        after_activation = ledger.balance(session, MEMBER)
    assert placed.paid_at.tzinfo is not None
    expired = run_now(runtime.store, "points-expiry", now=paid + timedelta(days=500))
    with runtime.store.session() as session:
        after_expiry = ledger.balance(session, MEMBER)

    assert (activated.status, activated.result, activated.trigger) == ("succeeded", 1, "manual")
    assert (after_activation.available, after_activation.pending) == (40, 0)
    assert (expired.status, expired.result, expired.stage, expired.done, expired.total) == (
        "succeeded",
        1,
        "expiring points",
        1,
        1,
    )
    assert after_expiry.available == 0


def test_the_coupon_expiry_job_expires_the_unused_coupons_of_ended_promotions(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    ended = now - timedelta(hours=1)
    with runtime.store.session() as session:
        for code, ends_at in (("ENDED", ended), ("RUNNING", now + timedelta(days=1))):
            data = {"code": code, "name": code, "kind": "fixed", "params": {"amount": "5"}, "ends_at": ends_at}
            data["starts_at"] = ended - timedelta(days=1)
            create_template(session, TemplateCreate.model_validate(data), "test")
        for code in ("ENDED", "ENDED", "RUNNING"):
            issue_coupon(session, code, MEMBER)

    run = run_now(runtime.store, "coupon-expiry", now=now)

    assert (run.status, run.result, run.stage, run.done, run.total) == ("succeeded", 2, "expiring coupons", 1, 1)
    with runtime.store.session() as session:
        assert sorted(c.status for c in member_coupons(session, MEMBER)) == ["expired", "expired", "issued"]
        statuses = sorted(session.scalars(select(Coupon.status)))
    assert statuses == ["expired", "expired", "issued"]  # stored so, not only read so


def test_an_unknown_job_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError, match="points-expiry"):
        run_now(runtime.store, "member-day")
