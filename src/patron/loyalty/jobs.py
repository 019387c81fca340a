"""The loyalty program's scheduled jobs: points activation and expiry, tier re-evaluation, coupon expiry.

=================== ===================== ================================================================
job                 default schedule      does
=================== ===================== ================================================================
points-activation   hourly at :05         makes pending points (past their return window) spendable
points-expiry       daily at 00:30        expires points whose expiry date has come
tier-reevaluation   daily at 03:00        re-evaluates every member's tier (down only under ``periodic``)
coupon-expiry       daily at 00:45        marks the unused coupons of promotions that have ended ``expired``
=================== ===================== ================================================================

Member-day double points need no job: member-day multipliers apply when an order is earned.
The retention purge (:mod:`patron.retention`) runs under this scheduler too, at the slot its settings name
(``run_claimed``); it is not one of these jobs, so loyalty operators can neither run nor reschedule it.

A schedule is ``hourly at :MM`` or ``daily at HH:MM`` (UTC), stored in the database. Each schedule has one
slot per hour or day; ``run_due`` runs the latest slot that has come and has not run yet. The run row is
inserted first and is unique on (job, slot), so when several processes call ``run_due`` at once exactly one
of them runs each slot. Runs record their status and progress (stage, done, total) as they go; a manual run
(``run_now``) gets a slot of its own.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import NotFoundError, ValidationError
from patron.loyalty import ledger, tiers
from patron.loyalty.earning import as_utc
from patron.loyalty.program_models import JobRun, JobSchedule
from patron.progress import NullProgress, Progress
from patron.promotions.coupons import expire_coupons
from patron.runtime import Runtime

__all__ = [
    "DEFAULT_SCHEDULES",
    "JOBS",
    "JobRead",
    "JobRunRead",
    "latest_slot",
    "list_jobs",
    "list_runs",
    "parse_spec",
    "run_claimed",
    "run_due",
    "run_now",
    "set_schedule",
]

log = logging.getLogger(__name__)

Job = Callable[[OperationalStore, datetime, Progress], int]
_SPEC = re.compile(r"^(?:hourly at :(?P<m>[0-5]\d)|daily at (?P<hh>[01]\d|2[0-3]):(?P<mm>[0-5]\d))$")
_RECORD_EVERY = 0.5  # seconds between progress writes


def _activation(store: OperationalStore, as_of: datetime, progress: Progress) -> int:
    progress.stage("activating pending points")
    with store.session() as session:
        return ledger.activate_due(session, as_of)


def _expiry(store: OperationalStore, as_of: datetime, progress: Progress) -> int:
    started: list[bool] = []

    def report(done: int, total: int) -> None:  # the ledger reports (done, total) per member
        if not started:
            progress.stage("expiring points", total=total)
            started.append(True)
        progress.advance(1)

    progress.stage("expiring points")
    return ledger.expire_due(store, as_of, report)


def _reevaluation(store: OperationalStore, as_of: datetime, progress: Progress) -> int:
    return tiers.reevaluate_all(store, as_of, progress)


def _coupon_expiry(store: OperationalStore, as_of: datetime, progress: Progress) -> int:
    def report(done: int, total: int) -> None:  # one call per ended promotion
        if done == 1:
            progress.stage("expiring coupons", total=total)
        progress.advance(1)

    progress.stage("expiring coupons")
    return expire_coupons(store, as_of, report)


JOBS: dict[str, tuple[Job, str]] = {
    "points-activation": (_activation, "make pending points past their return window spendable"),
    "points-expiry": (_expiry, "expire points whose expiry date has come"),
    "tier-reevaluation": (_reevaluation, "re-evaluate every member's tier"),
    "coupon-expiry": (_coupon_expiry, "mark the unused coupons of promotions that have ended expired"),
}
DEFAULT_SCHEDULES = {
    "points-activation": "hourly at :05",
    "points-expiry": "daily at 00:30",
    "tier-reevaluation": "daily at 03:00",
    "coupon-expiry": "daily at 00:45",
}


@dataclass(frozen=True)
class Spec:
    every: Literal["hourly", "daily"]
    hour: int
    minute: int


def parse_spec(text: str) -> Spec:
    """``hourly at :MM`` or ``daily at HH:MM`` (UTC)."""
    found = _SPEC.match(text.strip())
    if found is None:
        raise ValidationError(f"a schedule is 'hourly at :MM' or 'daily at HH:MM' (UTC), not {text!r}", field="spec")
    if found["m"] is not None:
        return Spec("hourly", 0, int(found["m"]))
    return Spec("daily", int(found["hh"]), int(found["mm"]))


def latest_slot(spec: Spec, now: datetime) -> datetime:
    """The latest moment at or before ``now`` that the schedule names."""
    now = as_utc(now)
    if spec.every == "hourly":
        slot = now.replace(minute=spec.minute, second=0, microsecond=0)
        return slot if slot <= now else slot - timedelta(hours=1)
    slot = now.replace(hour=spec.hour, minute=spec.minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


class JobRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    slot: str
    trigger: Literal["schedule", "manual"]
    status: Literal["running", "succeeded", "failed"]
    stage: str
    done: int
    total: int | None
    result: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class JobRead(BaseModel):
    name: str
    description: str
    spec: str
    enabled: bool
    next_run_at: datetime | None
    last_run: JobRunRead | None


def _insert_ignore(store: OperationalStore, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
    dialect = postgresql if store.dialect == "postgresql" else sqlite
    return dialect.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)


def _schedules(store: OperationalStore) -> dict[str, JobSchedule]:
    """Every job's schedule, storing the default of any job that has none yet."""
    with store.session() as session:
        for name, spec in DEFAULT_SCHEDULES.items():
            values = {"name": name, "spec": spec, "enabled": True, "updated_at": utcnow()}
            session.execute(_insert_ignore(store, JobSchedule.__table__, values, ["name"]))
        return {s.name: s for s in session.scalars(select(JobSchedule)) if s.name in JOBS}


def _job(name: str) -> Job:
    if name not in JOBS:
        raise NotFoundError(f"no job {name!r}; jobs: {', '.join(JOBS)}")
    return JOBS[name][0]


def set_schedule(store: OperationalStore, name: str, spec: str | None = None, enabled: bool | None = None) -> JobRead:
    """Change a job's schedule or switch it on or off."""
    _job(name)
    if spec is not None:
        parse_spec(spec)
    _schedules(store)
    with store.session() as session:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if spec is not None:
            values["spec"] = spec.strip()
        if enabled is not None:
            values["enabled"] = enabled
        session.execute(update(JobSchedule).where(JobSchedule.name == name).values(**values))
    return next(job for job in list_jobs(store) if job.name == name)


def list_runs(store: OperationalStore, name: str | None = None, limit: int = 20) -> list[JobRunRead]:
    """Recent runs, newest first."""
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(JobRun.name == name)
    with store.session() as session:
        return [JobRunRead.model_validate(r) for r in session.scalars(query)]


def list_jobs(store: OperationalStore, now: datetime | None = None) -> list[JobRead]:
    """Every job with its schedule, its next slot and its last run."""
    now = as_utc(now or utcnow())
    found = []
    for name, schedule in sorted(_schedules(store).items()):
        spec = parse_spec(schedule.spec)
        step = timedelta(hours=1) if spec.every == "hourly" else timedelta(days=1)
        last = list_runs(store, name, limit=1)
        found.append(
            JobRead(
                name=name,
                description=JOBS[name][1],
                spec=schedule.spec,
                enabled=schedule.enabled,
                next_run_at=latest_slot(spec, now) + step if schedule.enabled else None,
                last_run=last[0] if last else None,
            )
        )
    return found


class _RecordedProgress:
    """Passes progress on and writes it to the run's row (at most every half second)."""

    def __init__(self, store: OperationalStore, run_id: int, inner: Progress) -> None:
        self._store, self._run_id, self._inner = store, run_id, inner
        self._stage, self._done, self._written = "", 0, 0.0
        self._total: int | None = None

    def stage(self, description: str, total: int | None = None) -> None:
        self._inner.stage(description, total)
        self._stage, self._done, self._total = description, 0, total
        self.flush()

    def advance(self, steps: int = 1) -> None:
        self._inner.advance(steps)
        self._done += steps
        if time.monotonic() - self._written >= _RECORD_EVERY:
            self.flush()

    def flush(self, **extra: Any) -> None:
        values = {"stage": self._stage[:128], "done": self._done, "total": self._total, **extra}
        with self._store.session() as session:
            session.execute(update(JobRun).where(JobRun.id == self._run_id).values(**values))
        self._written = time.monotonic()


def _claim(store: OperationalStore, name: str, slot: str, trigger: str) -> int | None:
    """Insert the run first; None when another caller has this slot already."""
    values = {"name": name, "slot": slot, "trigger": trigger, "status": "running", "stage": "", "done": 0}
    values["started_at"] = utcnow()
    with store.session() as session:
        statement = _insert_ignore(store, JobRun.__table__, values, ["name", "slot"]).returning(JobRun.id)
        claimed: int | None = session.execute(statement).scalar()
        return claimed


def _bound(store: OperationalStore, name: str, as_of: datetime) -> Callable[[Progress], int]:
    job = _job(name)
    return lambda progress: job(store, as_of, progress)


def _execute(
    store: OperationalStore, run_id: int, name: str, work: Callable[[Progress], int], progress: Progress
) -> JobRunRead:
    recorded = _RecordedProgress(store, run_id, progress)
    try:
        result = work(recorded)
    except Exception as exc:  # a failed job is recorded, never lost; the scheduler goes on with the others
        log.exception("loyalty job failed", extra={"job": name, "run_id": run_id})
        recorded.flush(status="failed", error=f"{type(exc).__name__}: {exc}"[:512], finished_at=utcnow())
    else:
        recorded.flush(status="succeeded", result=result, finished_at=utcnow())
    with store.session() as session:
        run = session.get(JobRun, run_id)
        assert run is not None  # inserted by _claim
        return JobRunRead.model_validate(run)


def run_now(
    store: OperationalStore, name: str, progress: Progress | None = None, now: datetime | None = None
) -> JobRunRead:
    """Run a job at once, outside its schedule (a slot of its own); returns the finished run."""
    _job(name)
    now = as_utc(now or utcnow())
    run_id = _claim(store, name, f"manual:{now.isoformat()}:{secrets.token_hex(4)}", "manual")
    assert run_id is not None  # a manual slot is unique
    return _execute(store, run_id, name, _bound(store, name, now), progress or NullProgress())


def run_claimed(
    store: OperationalStore,
    name: str,
    slot: datetime | None,
    work: Callable[[Progress], int],
    progress: Progress | None = None,
) -> JobRunRead | None:
    """Run another domain's job as this scheduler runs its own: a scheduled ``slot`` once across processes.

    ``slot`` None is a manual run (a slot of its own). Returns the finished run, recorded like the loyalty
    jobs' runs, or None when another caller has the slot already.
    """
    if slot is None:
        run_id = _claim(store, name, f"manual:{utcnow().isoformat()}:{secrets.token_hex(4)}", "manual")
    else:
        run_id = _claim(store, name, as_utc(slot).strftime("%Y-%m-%dT%H:%MZ"), "schedule")
    if run_id is None:
        return None
    return _execute(store, run_id, name, work, progress or NullProgress())


def run_due(
    runtime: Runtime, now: datetime | None = None, progress: Callable[[str], Progress] | None = None
) -> list[JobRunRead]:
    """Run every enabled job whose latest slot has come and not run; each slot runs once across processes.

    ``progress`` gives a Progress per job name (the CLI's bars). Returns the runs this call made.
    """
    store = runtime.store
    now = as_utc(now or utcnow())
    runs = []
    for name, schedule in sorted(_schedules(store).items()):
        if not schedule.enabled:
            continue
        slot = latest_slot(parse_spec(schedule.spec), now).strftime("%Y-%m-%dT%H:%MZ")
        run_id = _claim(store, name, slot, "schedule")
        if run_id is None:
            continue
        runs.append(
            _execute(store, run_id, name, _bound(store, name, now), progress(name) if progress else NullProgress())
        )
    from patron.retention.schedule import retention_due  # the retention purge runs under this scheduler too

    retention = retention_due(runtime, now, progress("retention") if progress else NullProgress())
    if retention is not None:
        runs.append(retention)
    return runs
