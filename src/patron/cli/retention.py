"""`patron retention`: Retention periods per data category and the purge job."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.cli.common import err_console, fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress
from patron.retention.schemas import RetentionReport

__all__ = ["app"]

console = Console()
app = typer.Typer(help="Retention periods per data category and the purge job.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def retention_group() -> None:
    """Retention periods per data category and the purge job."""


@app.command("show")
def show(json_out: JsonOut = False) -> None:
    """Each data category's period, what goes after it, the schedule and the latest runs."""
    from patron.retention.schedule import recent_runs
    from patron.retention.service import policies

    with fail_on_error():
        runtime = open_runtime()
        found = policies(runtime.settings)
        runs = recent_runs(runtime)
    schedule = runtime.settings.retention_schedule
    if json_out:
        print_json(
            {
                "schedule": schedule,
                "categories": [p.model_dump(mode="json") for p in found],
                "runs": [r.model_dump(mode="json") for r in runs],
            }
        )
        return
    table = Table("category", "kept", "then", "older than", "what", title=f"Retention (runs {schedule}, UTC)")
    for policy in found:
        kept = f"{policy.days} days" if policy.days else "kept"
        cutoff = f"{policy.cutoff:%Y-%m-%d}" if policy.cutoff else "—"
        table.add_row(policy.category, kept, policy.action, cutoff, policy.description + _note(policy.note))
    console.print(table)
    if runs:
        history = Table("started", "trigger", "status", "affected", "error", title="Latest runs")
        for run in runs:
            started = f"{run.started_at:%Y-%m-%d %H:%M}"
            history.add_row(started, run.trigger, run.status, f"{run.result or 0:,}", run.error or "")
        console.print(history)


def _note(note: str) -> str:
    return f"\n[dim]{note}[/dim]" if note else ""


def _print_report(report: RetentionReport) -> None:
    verb = "would go" if report.dry_run else "went"
    table = Table("category", "then", "older than", verb, "error", title="Dry run" if report.dry_run else "Done")
    for result in report.results:
        table.add_row(
            result.category, result.action, f"{result.cutoff:%Y-%m-%d}", f"{result.affected:,}", result.error or ""
        )
    console.print(table)


@app.command("run")
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="Only this category (repeatable).")
    ] = None,
    scheduled: Annotated[
        bool,
        typer.Option("--scheduled", help="Run only if the scheduled slot has come and has not run (for cron)."),
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Purge (or anonymize) what each category keeps longer than its period; exit 1 if a category failed."""
    from patron.retention.schedule import retention_due, retention_now
    from patron.retention.service import run_retention

    if scheduled and (dry_run or category):
        err_console.print("[red]error:[/red] --scheduled runs every category for real: drop --dry-run/--category")
        raise typer.Exit(2)
    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(err_console, enabled=not json_out) as progress:
            if scheduled:
                done = retention_due(runtime, progress=progress)
                report = None
            elif dry_run:
                done, report = None, run_retention(runtime, dry_run=True, only=category, progress=progress)
            else:
                done, report = retention_now(runtime, f"cli:{getpass.getuser()}", progress, only=category)
    failed = (report is not None and bool(report.errors)) or (done is not None and done.status == "failed")
    if json_out:
        print_json(
            {
                "report": report.model_dump(mode="json") if report else None,
                "run": done.model_dump(mode="json") if done else None,
            }
        )
    elif report is not None:
        _print_report(report)
    elif scheduled:
        console.print(f"retention {done.status}: {done.result or 0:,} affected" if done else "retention is not due")
    if failed:
        raise typer.Exit(1)
