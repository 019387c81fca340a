"""Retention policies and runs: purge or anonymize what is older than each category's period.

Periods default to those of :mod:`patron.retention.categories`; ``PATRON_RETENTION_DAYS`` overrides them per
category. A run takes each category in turn, each in transactions of its own, so one that fails (the warehouse
busy with an import, say) leaves the others done; the run is audited with what each category lost. A dry run
counts what would go and changes nothing, not even the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

from patron.audit.service import record
from patron.db.base import utcnow
from patron.errors import PatronError, SettingsError, StoreError, ValidationError
from patron.progress import NullProgress, Progress
from patron.retention.categories import CATEGORIES, Category, Target
from patron.retention.schemas import CategoryResult, PolicyRead, RetentionReport
from patron.runtime import Runtime
from patron.settings import Settings
from patron.warehouse.store import Warehouse

__all__ = ["PURGED", "category_names", "chosen_categories", "periods", "policies", "run_retention"]

PURGED = tuple(c.name for c in CATEGORIES if c.action != "keep")  # the categories that have a period


def category_names() -> tuple[str, ...]:
    return tuple(c.name for c in CATEGORIES)


def periods(settings: Settings) -> dict[str, int]:
    """Days kept per purged category: the defaults, overridden by ``PATRON_RETENTION_DAYS``."""
    unknown = sorted(set(settings.retention_days) - set(PURGED))
    if unknown:
        raise SettingsError(
            f"PATRON_RETENTION_DAYS names {', '.join(unknown)}, which has no period; "
            f"categories with one: {', '.join(PURGED)}"
        )
    return {c.name: settings.retention_days.get(c.name, c.default_days or 0) for c in CATEGORIES if c.default_days}


def policies(settings: Settings, now: datetime | None = None) -> list[PolicyRead]:
    """Every category with its period and the cutoff it would have now."""
    now = now or utcnow()
    days = periods(settings)
    return [
        PolicyRead(
            category=c.name,
            description=c.description,
            place=c.place,
            action=c.action,
            days=days.get(c.name),
            default_days=c.default_days,
            cutoff=now - timedelta(days=days[c.name]) if c.name in days else None,
            note=c.note,
        )
        for c in CATEGORIES
    ]


def chosen_categories(only: Sequence[str] | None) -> list[Category]:
    """The categories a run covers: all with a period, or ``only`` these (checked)."""
    if not only:
        return [c for c in CATEGORIES if c.action != "keep"]
    unknown = [name for name in only if name not in PURGED]
    if unknown:
        raise ValidationError(
            f"no purged category {', '.join(map(repr, unknown))}; choose among {', '.join(PURGED)}", field="category"
        )
    return [c for c in CATEGORIES if c.name in only]


def _warehouse(runtime: Runtime, *, read_only: bool) -> Warehouse | None:
    """The warehouse, or None when it was never created (nothing in it to purge)."""
    location = runtime.settings.warehouse_location
    duckdb_file = Path(location.removeprefix("duckdb:///").removeprefix("duckdb://"))
    if location.startswith("duckdb://") and not duckdb_file.exists():
        return None
    warehouse = runtime.warehouse(read_only=read_only)
    if not warehouse.is_initialised():
        warehouse.close()
        return None
    return warehouse


def _one(category: Category, target: Target, days: int, dry_run: bool, progress: Progress) -> CategoryResult:
    cutoff = target.now - timedelta(days=days)
    progress.stage(f"{category.name}: older than {cutoff:%Y-%m-%d %H:%M} UTC", None)
    measure = category.count if dry_run else category.purge
    assert measure is not None  # every purged category has both
    try:
        affected = measure(target, cutoff, progress)
    except PatronError as exc:  # a busy or missing store: this category waits for the next run
        return CategoryResult(
            category=category.name, action=category.action, days=days, cutoff=cutoff, affected=0, error=str(exc)
        )
    return CategoryResult(category=category.name, action=category.action, days=days, cutoff=cutoff, affected=affected)


def run_retention(
    runtime: Runtime,
    *,
    dry_run: bool = False,
    only: Sequence[str] | None = None,
    now: datetime | None = None,
    actor: str = "system:retention",
    progress: Progress = NullProgress(),  # noqa: B008
) -> RetentionReport:
    """Purge (or, with ``dry_run``, count) what each category keeps longer than its period.

    ``only`` limits the run to some categories. A real run is audited as ``retention.run`` with the count of
    every category, and the errors of those that could not run.
    """
    runtime.store.require_initialised()
    chosen = chosen_categories(only)
    days = periods(runtime.settings)
    now = now or utcnow()
    results: list[CategoryResult] = []
    with ExitStack() as stack:
        warehouse: Warehouse | None = None
        try:
            warehouse = _warehouse(runtime, read_only=dry_run)
        except StoreError as exc:
            warehouse_error: str | None = str(exc)
        else:
            warehouse_error = None
            if warehouse is not None:
                stack.callback(warehouse.close)
        target = Target(store=runtime.store, warehouse=warehouse, settings=runtime.settings, now=now)
        for category in chosen:
            if warehouse_error is not None and (category.place == "warehouse" or category.action == "anonymize"):
                cutoff = now - timedelta(days=days[category.name])
                results.append(
                    CategoryResult(
                        category=category.name,
                        action=category.action,
                        days=days[category.name],
                        cutoff=cutoff,
                        affected=0,
                        error=warehouse_error,
                    )
                )
                continue
            results.append(_one(category, target, days[category.name], dry_run, progress))
    report = RetentionReport(dry_run=dry_run, ran_at=now, results=results)
    if not dry_run:
        details: dict[str, object] = {"counts": {r.category: r.affected for r in results}}
        if report.errors:
            details["errors"] = report.errors
        record(runtime.store, actor, "retention.run", None, details=details)
    return report
