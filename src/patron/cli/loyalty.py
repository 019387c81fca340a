"""`patron loyalty`: Loyalty program: tiers, earning rules and scheduled jobs."""

from __future__ import annotations

import getpass
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress

if TYPE_CHECKING:
    from pydantic import BaseModel

    from patron.loyalty.jobs import JobRunRead

__all__ = ["app"]

console = Console()
app = typer.Typer(help="Loyalty program: tiers, earning rules and scheduled jobs.", no_args_is_help=True)
tiers_app = typer.Typer(help="Member tiers and their benefits.", no_args_is_help=True)
rules_app = typer.Typer(help="Earning rules: base rate, multipliers, caps.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Points activation, points expiry, tier re-evaluation and coupon expiry jobs.", no_args_is_help=True
)
app.add_typer(tiers_app, name="tiers")
app.add_typer(rules_app, name="rules")
app.add_typer(jobs_app, name="jobs")

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def loyalty() -> None:
    """Loyalty program: tiers, earning rules and scheduled jobs."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _validated(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    """A pydantic model from options, or a one-line error naming the field."""
    from pydantic import ValidationError as PydanticError

    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except PydanticError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        err_console.print(f"[red]error ({'.'.join(map(str, first['loc']))}):[/red] {escape(message)}")
        raise typer.Exit(1) from None


@tiers_app.command("list")
def tiers_list(json_out: JsonOut = False) -> None:
    """Tiers from the lowest threshold up, with their benefits."""
    from patron.loyalty.tiers import list_tiers, program_settings

    with fail_on_error(), open_runtime().store.session() as session:
        found, settings = list_tiers(session), program_settings(session)
        if json_out:
            print_json([tier.model_dump(mode="json") for tier in found])
            return
        if not found:
            console.print("no tiers yet: `patron loyalty tiers add --help`")
            return
        title = (
            f"Tiers by {settings.tier_basis} over {settings.tier_window_days} days"
            f" (downgrade: {settings.downgrade_policy})"
        )
        table = Table("code", "name", "threshold", "multiplier", "coupons", "free shipping", title=title)
        for tier in found:
            coupons = ", ".join(tier.coupons) or "—"
            table.add_row(
                tier.code,
                escape(tier.name),
                f"{tier.threshold:,}",
                f"x{tier.multiplier}",
                escape(coupons),
                "yes" if tier.free_shipping else "no",
            )
        console.print(table)


@tiers_app.command("add")
def tiers_add(
    code: Annotated[str, typer.Option(help="Lower-case code, e.g. gold.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 金卡.")],
    threshold: Annotated[str, typer.Option(help="Points (or spend) over the window that reach the tier.")],
    multiplier: Annotated[str, typer.Option(help="Earning multiplier of the tier.")] = "1",
    coupon: Annotated[list[str] | None, typer.Option(help="Coupon template issued on upgrade (repeatable).")] = None,
    free_shipping: Annotated[bool, typer.Option("--free-shipping", help="Members of the tier ship free.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Add a tier."""
    from patron.loyalty.tiers import TierCreate, create_tier

    with fail_on_error():
        runtime = open_runtime()
        data = _validated(
            TierCreate,
            {
                "code": code,
                "name": name,
                "threshold": threshold,
                "multiplier": multiplier,
                "coupons": coupon or [],
                "free_shipping": free_shipping,
            },
        )
        created = create_tier(runtime.store, data)
        record(
            runtime.store,
            _actor(),
            "loyalty_tier.create",
            f"tier:{created.code}",
            details={"threshold": str(created.threshold)},
        )
        if json_out:
            print_json(created.model_dump(mode="json"))
            return
        console.print(f"tier [bold]{created.code}[/bold] at {created.threshold:,}, x{created.multiplier}")


def _describe(rule: Any) -> str:
    if rule.kind == "base":
        return f"{rule.points_per_unit} point(s) per currency unit"
    if rule.kind == "cap":
        return f"at most {rule.max_points} points per {rule.period}"
    when = ""
    if rule.day_of_month is not None:
        when = f" on day {rule.day_of_month}"
    elif rule.weekday is not None:
        when = f" on weekday {rule.weekday} (0 = Monday)"
    window = (
        f" from {rule.starts_at:%Y-%m-%d %H:%M} to {rule.ends_at:%Y-%m-%d %H:%M}"
        if rule.starts_at and rule.ends_at
        else ""
    )
    target = f" {rule.match}" if rule.match else ""
    return f"x{rule.multiplier} for {rule.scope}{target}{when}{window}"


@rules_app.command("list")
def rules_list(json_out: JsonOut = False) -> None:
    """Every earning rule."""
    from patron.loyalty.program_rules import list_rules

    with fail_on_error(), open_runtime().store.session() as session:
        found = list_rules(session)
        if json_out:
            print_json([rule.model_dump(mode="json") for rule in found])
            return
        if not found:
            console.print("no earning rules yet: `patron loyalty rules add --help`")
            return
        table = Table("id", "name", "kind", "rule", "enabled", title="Earning rules")
        for rule in found:
            table.add_row(
                str(rule.id), escape(rule.name), rule.kind, escape(_describe(rule)), "yes" if rule.enabled else "no"
            )
        console.print(table)


@rules_app.command("add")
def rules_add(
    name: Annotated[str, typer.Option(help="A unique name.")],
    kind: Annotated[str, typer.Option(help="base, multiplier or cap.")],
    points_per_unit: Annotated[str | None, typer.Option(help="base: points per currency unit.")] = None,
    scope: Annotated[str | None, typer.Option(help="multiplier: category, brand, campaign or member_day.")] = None,
    match: Annotated[str | None, typer.Option(help="multiplier: the category or brand (campaign: a label).")] = None,
    multiplier: Annotated[str | None, typer.Option(help="multiplier: the factor, e.g. 2.")] = None,
    starts_at: Annotated[str | None, typer.Option(help="multiplier: window start (ISO date-time).")] = None,
    ends_at: Annotated[str | None, typer.Option(help="multiplier: window end, exclusive (ISO date-time).")] = None,
    day_of_month: Annotated[int | None, typer.Option(help="member_day: day of the month, e.g. 18.")] = None,
    weekday: Annotated[int | None, typer.Option(help="member_day: weekday, 0 = Monday.")] = None,
    period: Annotated[str | None, typer.Option(help="cap: day, week or month.")] = None,
    max_points: Annotated[int | None, typer.Option(help="cap: most points per period.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create the rule switched off.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Add an earning rule (docs/loyalty-program.md explains each kind)."""
    from patron.loyalty.program_rules import EarningRuleCreate, create_rule

    with fail_on_error():
        runtime = open_runtime()
        fields = {
            "name": name, "kind": kind, "points_per_unit": points_per_unit, "scope": scope, "match": match,
            "multiplier": multiplier, "starts_at": starts_at, "ends_at": ends_at, "day_of_month": day_of_month,
            "weekday": weekday, "period": period, "max_points": max_points, "enabled": not disabled,
        }  # fmt: skip
        created = create_rule(runtime.store, _validated(EarningRuleCreate, fields), _actor())
        record(
            runtime.store, _actor(), "earning_rule.create", f"earning_rule:{created.id}", details={"kind": created.kind}
        )
        if json_out:
            print_json(created.model_dump(mode="json"))
            return
        console.print(f"earning rule {created.id} [bold]{escape(created.name)}[/bold]: {escape(_describe(created))}")


@app.command("dry-run")
def dry_run_command(
    order_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The order as a JSON file.")],
    json_out: JsonOut = False,
) -> None:
    """How many points an order would earn now, and why (nothing is written)."""
    from patron.errors import ValidationError
    from patron.loyalty.earning import OrderIn
    from patron.loyalty.program import dry_run

    with fail_on_error():
        try:
            raw = json.loads(order_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"{order_file.name} is not JSON: {exc}", field="order_file") from None
        order = _validated(OrderIn, raw if isinstance(raw, dict) else {"order": raw})
        with open_runtime().store.session() as session:
            explained = dry_run(session, order)
        if json_out:
            print_json(explained.model_dump(mode="json"))
            return
        console.print(
            f"order [bold]{escape(order.order_key)}[/bold] would earn [bold]{explained.points}[/bold] point(s)"
        )
        for reason in explained.reasons:
            console.print(f"• {escape(reason)}")


def _runs_table(runs: list[JobRunRead], title: str) -> Table:
    table = Table("id", "job", "slot", "status", "result", "progress", "started", "finished", title=title)
    for run in runs:
        done = f"{run.done}/{run.total}" if run.total is not None else str(run.done)
        finished = f"{run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else "—"
        status = run.status if run.error is None else f"{run.status}: {run.error}"
        table.add_row(
            str(run.id),
            run.name,
            run.slot,
            escape(status),
            "—" if run.result is None else str(run.result),
            done,
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            finished,
        )
    return table


@jobs_app.command("list")
def jobs_list(json_out: JsonOut = False) -> None:
    """Every job with its schedule (UTC), next run and last run."""
    from patron.loyalty.jobs import list_jobs

    with fail_on_error():
        found = list_jobs(open_runtime().store)
        if json_out:
            print_json([job.model_dump(mode="json") for job in found])
            return
        table = Table("job", "schedule (UTC)", "enabled", "next run", "last run", "does", title="Loyalty jobs")
        for job in found:
            last = f"{job.last_run.status} {job.last_run.started_at:%Y-%m-%d %H:%M}" if job.last_run else "never"
            upcoming = f"{job.next_run_at:%Y-%m-%d %H:%M}" if job.next_run_at else "—"
            table.add_row(job.name, job.spec, "yes" if job.enabled else "no", upcoming, last, job.description)
        console.print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="points-activation, points-expiry, tier-reevaluation or coupon-expiry.")],
    json_out: JsonOut = False,
) -> None:
    """Run a job now, with a progress bar; the run is kept in the job history."""
    from patron.loyalty.jobs import run_now

    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(err_console, enabled=not json_out) as progress:
            run = run_now(runtime.store, name, progress)
        record(
            runtime.store, _actor(), "loyalty_job.run", f"job:{name}", details={"run_id": run.id, "status": run.status}
        )
        if json_out:
            print_json(run.model_dump(mode="json"))
        else:
            console.print(_runs_table([run], f"{name}: {run.status}"))
        if run.status == "failed":
            raise typer.Exit(1)


def _run_due(json_out: bool) -> list[JobRunRead]:
    from patron.loyalty.jobs import run_due

    runtime = open_runtime()
    with RichProgress(err_console, enabled=not json_out) as bars:
        return run_due(runtime, progress=lambda _name: bars)


@jobs_app.command("run-due")
def jobs_run_due(json_out: JsonOut = False) -> None:
    """Run every job whose scheduled slot has come and has not run (each slot once, across processes)."""
    with fail_on_error():
        runs = _run_due(json_out)
        if json_out:
            print_json([run.model_dump(mode="json") for run in runs])
            return
        console.print(_runs_table(runs, f"{len(runs)} job(s) ran") if runs else "no job is due")


@app.command("scheduler")
def scheduler(
    every: Annotated[int, typer.Option(min=1, max=3600, help="Seconds between checks.")] = 60,
    iterations: Annotated[int, typer.Option(min=0, help="Stop after N checks (0: run until interrupted).")] = 0,
    json_out: JsonOut = False,
) -> None:
    """Run due jobs every N seconds until interrupted (Ctrl-C); safe to run in several processes."""
    with fail_on_error():
        checks = 0
        try:
            while True:
                runs = _run_due(json_out)
                stamp = f"{datetime.now():%H:%M:%S}"
                if json_out:
                    print_json([run.model_dump(mode="json") for run in runs])
                elif runs:
                    console.print(_runs_table(runs, f"{stamp}: {len(runs)} job(s) ran"))
                checks += 1
                if iterations and checks >= iterations:
                    return
                time.sleep(every)
        except KeyboardInterrupt:
            err_console.print(f"scheduler stopped after {checks} check(s)")
