"""Import, build and read commands."""

from __future__ import annotations

import getpass
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress

if TYPE_CHECKING:
    from patron.analytics.schemas import FunnelReport

__all__ = ["build", "cohorts", "funnels", "import_file", "imports", "kpis", "repurchase", "segments"]

console = Console()
imports = typer.Typer(help="Import runs and their quarantined rows.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _load_mapping(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from patron.ingest import generic

    loaded: dict[str, Any] = generic.load_mapping(path)
    return loaded


def import_file(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="online-retail, cdnow, taobao or generic.")],
    path: Annotated[
        Path,
        typer.Argument(help="The file to import: CSV or CSV.gz, Parquet (generic), CDNOW's whitespace-separated log."),
    ],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Mapping file (YAML or JSON), for the generic format.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Import a file; rows that fail validation are quarantined, never dropped."""
    from patron.ingest.service import run_import

    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(Console(stderr=True), enabled=not json_out) as progress:
            summary = run_import(runtime, fmt, path, mapping=_load_mapping(mapping), progress=progress)
        record(runtime.store, _actor(), "import.run", f"import:{summary.id}", details={"format": fmt})
        if json_out:
            print_json(summary.model_dump(mode="json"))
            return
        table = Table(title=f"Import {summary.id}: {summary.source_name}")
        for column in ("rows read", "imported", "quarantined", "duplicate"):
            table.add_column(column, justify="right")
        table.add_row(
            *(
                f"{n:,}"
                for n in (summary.rows_read, summary.rows_imported, summary.rows_quarantined, summary.rows_duplicate)
            )
        )
        console.print(table)
        console.print("new rows per entity: " + ", ".join(f"{k} {v:,}" for k, v in summary.entities.items()))
        if summary.rows_quarantined:
            console.print(f"see the quarantined rows with: patron imports quarantine {summary.id}")


@imports.command("list")
def list_runs(json_out: JsonOut = False, limit: Annotated[int, typer.Option(min=1, max=500)] = 20) -> None:
    """Recent import runs with their reconciliation."""
    from patron.ingest.service import list_imports

    with fail_on_error():
        runs = list_imports(open_runtime(), limit)
        if json_out:
            print_json([r.model_dump(mode="json") for r in runs])
            return
        table = Table("id", "format", "file", "status", "read", "imported", "quarantined", "duplicate")
        for r in runs:
            table.add_row(
                str(r.id),
                r.format,
                r.source_name,
                r.status,
                *(f"{n:,}" for n in (r.rows_read, r.rows_imported, r.rows_quarantined, r.rows_duplicate)),
            )
        console.print(table)


@imports.command("quarantine")
def quarantine(
    run_id: Annotated[int, typer.Argument(help="The import run id (see `patron imports list`).")],
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_out: JsonOut = False,
) -> None:
    """Rows an import quarantined: row number, field, reason, raw row."""
    from patron.ingest.service import quarantine_page

    with fail_on_error():
        result = quarantine_page(open_runtime(), run_id, page, page_size)
        if json_out:
            print_json(result.model_dump(mode="json"))
            return
        table = Table("row", "field", "reason", "raw", title=f"{result.total:,} quarantined rows (page {page})")
        for item in result.items:
            table.add_row(str(item.row_number), item.field, item.reason, item.raw[:80])
        console.print(table)


def build(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD; default: the day after the last order.")
    ] = None,
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Fit CLV, churn and clusters (off: RFM, segments, tags).")
    ] = True,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Check the alert rules on the new build's latest day.")
    ] = True,
    json_out: JsonOut = False,
) -> None:
    """Compute member profiles, segments, behaviour tags, CLV, churn risk and clusters; then check alerts."""
    from patron.alerts.service import check_alerts
    from patron.analytics.build import build_profiles
    from patron.errors import ValidationError

    with fail_on_error():
        try:
            day = date.fromisoformat(as_of) if as_of else None
        except ValueError:
            raise ValidationError(f"not a date (YYYY-MM-DD): {as_of!r}", field="as_of") from None
        runtime = open_runtime()
        with RichProgress(Console(stderr=True), enabled=not json_out) as progress:
            result = build_profiles(runtime, day, progress, with_models=models)
        record(runtime.store, _actor(), "build.run", f"build:{result.id}", details={"as_of": str(result.as_of)})
        fired = check_alerts(runtime) if alerts else []
        if json_out:
            print_json({**result.model_dump(mode="json"), "alerts": [a.model_dump(mode="json") for a in fired]})
            return
        console.print(
            f"[green]built[/green] {result.members_profiled:,} profiles as of {result.as_of} in {result.seconds:.1f} s"
        )
        for alert in fired:
            console.print(f"[yellow]alert[/yellow] {alert.message}")


def segments(json_out: JsonOut = False) -> None:
    """Members per RFM segment in the current build."""
    from patron.analytics.artefacts import reader_for
    from patron.analytics.service import segment_summary

    with fail_on_error():
        summary = segment_summary(reader_for(open_runtime().settings.artefact_dir))
        if json_out:
            print_json({s.segment: s.members for s in summary.segments})
            return
        table = Table(
            "segment",
            "members",
            "share",
            "avg recency (d)",
            "avg orders",
            "avg spend",
            title=f"Segments as of {summary.as_of}",
        )
        for s in summary.segments:
            table.add_row(
                s.segment,
                f"{s.members:,}",
                f"{s.share:.1%}",
                f"{s.avg_recency_days:.0f}",
                f"{s.avg_frequency:.2f}",
                f"{s.avg_monetary:,.2f}",
            )
        console.print(table)


def kpis(
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: a year before as-of).")] = None,
    end: Annotated[str | None, typer.Option(help="Day after the last, YYYY-MM-DD (default: as-of).")] = None,
    granularity: Annotated[str, typer.Option(help="day, week, month, quarter, year or total.")] = "month",
    json_out: JsonOut = False,
) -> None:
    """GMV, orders, buyers, AOV, repurchase rate, new vs returning buyers."""
    from patron.analytics.artefacts import reader_for
    from patron.analytics.service import kpi_report
    from patron.errors import ValidationError

    with fail_on_error():
        try:
            first = date.fromisoformat(start) if start else None
            last = date.fromisoformat(end) if end else None
        except ValueError as exc:
            raise ValidationError(f"dates are YYYY-MM-DD: {exc}", field="start/end") from None
        report = kpi_report(reader_for(open_runtime().settings.artefact_dir), first, last, granularity)
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        table = Table(
            "period",
            "GMV",
            "orders",
            "AOV",
            "buyers",
            "new",
            "returning",
            "repurchase",
            title=f"KPIs {report.start} .. {report.end} by {report.granularity}",
        )
        rows = [*report.points, *([report.total] if report.total else [])]
        for i, p in enumerate(rows):
            label = "total" if i == len(report.points) else p.period.date().isoformat()
            table.add_row(
                label,
                f"{p.gmv:,.2f}",
                f"{p.orders:,}",
                f"{p.aov:,.2f}",
                f"{p.buyers:,}",
                f"{p.new_buyers:,}",
                f"{p.returning_buyers:,}",
                f"{p.repurchase_rate:.1%}",
            )
        console.print(table)


def cohorts(
    period: Annotated[str, typer.Option(help="week or month.")] = "month",
    metric: Annotated[str, typer.Option(help="members or revenue.")] = "members",
    json_out: JsonOut = False,
) -> None:
    """Retention of acquisition cohorts: members (or revenue) active in each later period."""
    from patron.analytics.artefacts import reader_for
    from patron.analytics.service import cohort_report
    from patron.errors import ValidationError

    with fail_on_error():
        if period not in ("week", "month"):
            raise ValidationError(f"period must be week or month, not {period!r}", field="period")
        if metric not in ("members", "revenue"):
            raise ValidationError(f"metric must be members or revenue, not {metric!r}", field="metric")
        report = cohort_report(reader_for(open_runtime().settings.artefact_dir), period, metric)  # type: ignore[arg-type]
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        width = max((c.period_index for c in report.cells), default=0) + 1
        table = Table(
            "cohort", "size", *(str(i) for i in range(min(width, 13))), title=f"{metric} retention by {period}"
        )
        rows: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        for cell in report.cells:
            key = cell.cohort.date().isoformat()
            sizes[key] = cell.cohort_size
            rows.setdefault(key, []).append(f"{cell.retention:.0%}")
        for key, shares in rows.items():
            table.add_row(key, f"{sizes[key]:,}", *shares[:13])
        console.print(table)


def repurchase(json_out: JsonOut = False) -> None:
    """Days between a member's consecutive completed orders: histogram and percentiles."""
    from patron.analytics.artefacts import reader_for
    from patron.analytics.service import repurchase_report

    with fail_on_error():
        report = repurchase_report(reader_for(open_runtime().settings.artefact_dir))
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        table = Table("days", "gaps", "share", "cumulative", title=f"{report.intervals:,} repurchase intervals")
        for b in report.bins:
            upper = "" if b.upper_days is None else f"{b.upper_days:g}"
            table.add_row(
                f"{b.lower_days:g}-{upper}", f"{b.intervals:,}", f"{b.share:.1%}", f"{b.cumulative_share:.1%}"
            )
        console.print(table)
        stats = {"mean": report.mean_days, **report.percentiles}
        console.print(", ".join(f"{k} {'—' if v is None else f'{v:.1f} d'}" for k, v in stats.items()))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*$")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "": 1.0, "d": 24.0, "w": 168.0}


def _window(text: str) -> timedelta:
    """``30m``, ``24h`` (or ``24``), ``7d``, ``2w`` -> timedelta."""
    from patron.errors import ValidationError

    found = _DURATION.match(text.lower())
    if found is None:
        raise ValidationError(f"a window is a number with m, h, d or w, e.g. 24h or 7d; not {text!r}", field="window")
    return timedelta(hours=float(found.group(1)) * _UNIT_HOURS[found.group(2)])


def _day(text: str | None, field: str) -> date | None:
    from patron.errors import ValidationError

    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD): {text!r}", field=field) from None


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def funnels(
    steps: Annotated[
        str,
        typer.Option(
            help="Comma-separated event types in order; narrow a step with :category=, :channel= or :product=, "
            "e.g. view:category=Books,cart,purchase."
        ),
    ] = "view,cart,purchase",
    window: Annotated[str, typer.Option(help="Conversion window after the first step: 30m, 24h, 7d, 2w.")] = "24h",
    order: Annotated[str, typer.Option(help="strict (each step after the previous) or any.")] = "strict",
    exclude: Annotated[str, typer.Option(help="Exclusion steps, same syntax as --steps.")] = "",
    breakdown: Annotated[str, typer.Option(help="none, channel, category, segment or lifecycle.")] = "none",
    start: Annotated[str | None, typer.Option(help="First day of entry, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Day after the last day of entry, YYYY-MM-DD.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Conversion funnel over member events: members per step, conversion and median time to convert."""
    from patron.analytics.artefacts import reader_for
    from patron.analytics.service import FUNNEL_BREAKDOWNS, funnel_report, parse_steps
    from patron.errors import ValidationError

    with fail_on_error():  # options are checked before the build is opened
        chosen = parse_steps(steps, field="steps")
        exclusions = parse_steps(exclude, field="exclude", required=False)
        duration, first, last = _window(window), _day(start, "start"), _day(end, "end")
        if order not in ("strict", "any"):
            raise ValidationError(f"order must be strict or any, not {order!r}", field="order")
        if breakdown not in FUNNEL_BREAKDOWNS:
            raise ValidationError(f"breakdown must be one of {', '.join(FUNNEL_BREAKDOWNS)}", field="breakdown")
        reader = reader_for(open_runtime().settings.artefact_dir)
        report = funnel_report(reader, chosen, duration, order, exclusions, breakdown, first, last)
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        _print_funnel(report)


def _print_funnel(report: FunnelReport) -> None:
    title = f"Funnel ({report.order} order, window {report.window_hours:g} h)"
    table = Table(
        report.breakdown if report.groups else "group",
        "step",
        "members",
        "from previous",
        "from first",
        "median time",
        title=title,
    )
    table.columns[1].overflow = "fold"  # never cut a step's filter off
    groups = [("all", report.overall)] + [
        ("other" if g.other else (g.value or "(none)"), g.steps) for g in report.groups
    ]
    for label, group_steps in groups:
        for step in group_steps:
            table.add_row(
                escape(label) if step.step == 1 else "",
                escape(step.name),  # step names hold brackets: view[category=Books]
                f"{step.members:,}",
                f"{step.conversion_from_previous:.1%}",
                f"{step.conversion_from_first:.1%}",
                _duration_text(step.median_seconds),
                end_section=step.step == len(group_steps),
            )
    console.print(table)
    if report.exclusions:
        console.print("excluded: members with " + ", ".join(report.exclusions) + " between entry and conversion")
