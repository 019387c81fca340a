"""The scheduled retention run: the scheduler of :mod:`patron.loyalty.jobs` runs it once per slot.

``PATRON_RETENTION_SCHEDULE`` names the slot (``daily at HH:MM`` UTC, or ``off``). The slot is claimed in
the scheduler's run table under the name ``retention``, so several schedulers run it once between them, and
the run's status and progress are recorded there like the loyalty jobs'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select

from patron.db.base import utcnow
from patron.errors import PatronError
from patron.loyalty.jobs import JobRunRead, latest_slot, parse_spec, run_claimed
from patron.loyalty.program_models import JobRun
from patron.progress import NullProgress, Progress
from patron.retention.schemas import RetentionReport
from patron.retention.service import chosen_categories, run_retention
from patron.runtime import Runtime

__all__ = ["JOB_NAME", "RetentionFailedError", "recent_runs", "retention_due", "retention_now"]

JOB_NAME = "retention"


class RetentionFailedError(PatronError):
    """Some categories could not be purged; the others were."""


def _work(
    runtime: Runtime,
    now: datetime | None,
    actor: str,
    reports: list[RetentionReport],
    only: Sequence[str] | None = None,
) -> Callable[[Progress], int]:
    def work(progress: Progress) -> int:
        report = run_retention(runtime, now=now, actor=actor, progress=progress, only=only)
        reports.append(report)
        if report.errors:  # the run is recorded as failed; what could be purged was, and is audited
            failed = "; ".join(f"{name}: {error}" for name, error in report.errors.items())
            raise RetentionFailedError(failed)
        return report.total

    return work


def retention_due(runtime: Runtime, now: datetime | None = None, progress: Progress | None = None) -> JobRunRead | None:
    """Run retention if its scheduled slot has come and no process has run it; None otherwise."""
    spec = runtime.settings.retention_schedule
    if spec == "off":
        return None
    moment = now or utcnow()
    slot = latest_slot(parse_spec(spec), moment)
    reports: list[RetentionReport] = []
    work = _work(runtime, moment, f"system:{JOB_NAME}", reports)
    return run_claimed(runtime.store, JOB_NAME, slot, work, progress or NullProgress())


def retention_now(
    runtime: Runtime,
    actor: str,
    progress: Progress | None = None,
    *,
    only: Sequence[str] | None = None,
    now: datetime | None = None,
) -> tuple[JobRunRead, RetentionReport | None]:
    """Run retention at once (a manual run, recorded and audited); the run and its report.

    ``only`` limits it to some categories; a name that is not a purged category fails before anything runs.
    """
    chosen_categories(only)
    reports: list[RetentionReport] = []
    work = _work(runtime, now, actor, reports, only)
    run = run_claimed(runtime.store, JOB_NAME, None, work, progress or NullProgress())
    assert run is not None  # a manual run has a slot of its own
    return run, reports[0] if reports else None


def recent_runs(runtime: Runtime, limit: int = 5) -> list[JobRunRead]:
    """The latest retention runs, newest first."""
    query = select(JobRun).where(JobRun.name == JOB_NAME).order_by(JobRun.started_at.desc(), JobRun.id.desc())
    with runtime.store.session() as session:
        return [JobRunRead.model_validate(run) for run in session.scalars(query.limit(limit))]
