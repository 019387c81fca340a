"""`patron alerts`: KPI alert rules, checking them, and the alerts they fired."""

from __future__ import annotations

import getpass
from contextlib import nullcontext
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json

if TYPE_CHECKING:
    from patron.alerts.schemas import AlertRead, AlertRuleCreate, AlertRuleRead

__all__ = ["app", "rules"]

console = Console()
app = typer.Typer(help="KPI alerts: threshold, percentage-change and anomaly rules.", no_args_is_help=True)
rules = typer.Typer(help="Alert rules.", no_args_is_help=True)
app.add_typer(rules, name="rules")

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RuleId = Annotated[int, typer.Argument(min=1, help="The rule's id (see `patron alerts rules list`).")]
_OP_WORDS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@app.callback()
def alerts() -> None:
    """KPI alerts: threshold, percentage-change and anomaly rules."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _condition(rule: AlertRuleRead) -> str:
    if rule.kind == "threshold":
        return f"{rule.metric} {rule.op} {rule.value:g}"
    if rule.kind == "pct_change":
        return f"{rule.metric} change vs {rule.compare_to} {rule.op} {rule.percent:g}%"
    festivals = ", festivals skipped" if rule.skip_festivals else ""
    return (
        f"{rule.metric} robust z ({rule.direction}) > {rule.z_threshold:g} over {rule.weeks} weeks, "
        f"MAD from {rule.mad_from}, min {rule.min_weeks} weeks{festivals}"
    )


def _rules_table(found: list[AlertRuleRead]) -> Table:
    table = Table("id", "name", "kind", "condition", "enabled", "webhook", title="Alert rules")
    for rule in found:
        table.add_row(
            str(rule.id),
            escape(rule.name),
            rule.kind,
            escape(_condition(rule)),
            "yes" if rule.enabled else "no",
            escape(rule.webhook_url or "—"),
        )
    return table


def _alerts_table(found: list[AlertRead], title: str) -> Table:
    table = Table("id", "day", "rule", "metric", "value", "expected", "score", "delivery", title=title)
    for alert in found:
        delivery: str = alert.delivery_status
        if alert.delivery_attempts:
            delivery += f" ({alert.delivery_attempts} tries)"
        table.add_row(
            str(alert.id),
            alert.day.isoformat(),
            escape(alert.rule_name),
            alert.metric,
            f"{alert.value:,.2f}",
            "—" if alert.expected is None else f"{alert.expected:,.2f}",
            "—" if alert.score is None else f"{alert.score:+.2f}",
            delivery,
        )
    return table


@rules.command("list")
def list_rules_command(json_out: JsonOut = False) -> None:
    """Every rule with its condition; never the webhook secrets."""
    from patron.alerts.service import list_rules

    with fail_on_error():
        found = list_rules(open_runtime().store)
        if json_out:
            print_json([rule.model_dump(mode="json") for rule in found])
            return
        console.print(_rules_table(found) if found else "no alert rules yet: `patron alerts rules add --help`")


def _rule_data(fields: dict[str, Any]) -> AlertRuleCreate:
    from pydantic import ValidationError as PydanticError

    from patron.alerts.schemas import AlertRuleCreate

    try:
        return AlertRuleCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except PydanticError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        err_console.print(f"[red]error ({'.'.join(map(str, first['loc']))}):[/red] {escape(message)}")
        raise typer.Exit(1) from None


@rules.command("add")
def add(
    name: Annotated[str, typer.Option(help="A unique name.")],
    metric: Annotated[
        str, typer.Option(help="gmv, orders, aov, buyers, repurchase_rate, new_buyers or returning_buyers.")
    ],
    kind: Annotated[str, typer.Option(help="threshold, pct_change or anomaly.")],
    op: Annotated[str | None, typer.Option(help="threshold, pct_change: <, <=, >, >= (or lt, le, gt, ge).")] = None,
    value: Annotated[float | None, typer.Option(help="threshold: the limit.")] = None,
    percent: Annotated[float | None, typer.Option(help="pct_change: the change in percent, e.g. -30.")] = None,
    compare_to: Annotated[
        str | None, typer.Option(help="pct_change: previous_day (default) or same_weekday (a week earlier).")
    ] = None,
    weeks: Annotated[int | None, typer.Option(help="anomaly: weeks of same-weekday history (default 8).")] = None,
    min_weeks: Annotated[int | None, typer.Option(help="anomaly: least history to judge a day (default 4).")] = None,
    z: Annotated[float | None, typer.Option("--z", help="anomaly: robust z threshold (default 3.5).")] = None,
    direction: Annotated[str | None, typer.Option(help="anomaly: both (default), up or down.")] = None,
    mad_from: Annotated[
        str | None, typer.Option(help="anomaly: all_weekdays (default) or same_weekday, where the MAD comes from.")
    ] = None,
    skip_festivals: Annotated[
        bool, typer.Option("--skip-festivals", help="anomaly: neither judge nor learn from 618 and Double-11 days.")
    ] = False,
    webhook_url: Annotated[str | None, typer.Option(help="http(s) URL to post each alert to.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create the rule switched off.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Create a rule; the webhook signing secret is printed once."""
    from patron.alerts.service import create_rule

    with fail_on_error():
        runtime = open_runtime()
        data = _rule_data(
            {
                "name": name,
                "metric": metric,
                "kind": kind,
                "op": _OP_WORDS.get(op, op) if op else None,
                "value": value,
                "percent": percent,
                "compare_to": compare_to,
                "weeks": weeks,
                "min_weeks": min_weeks,
                "z_threshold": z,
                "direction": direction,
                "mad_from": mad_from,
                "skip_festivals": skip_festivals or None,
                "webhook_url": webhook_url,
                "enabled": not disabled,
            }
        )
        created = create_rule(runtime, data, _actor())
        record(runtime.store, _actor(), "alert_rule.create", f"alert_rule:{created.id}", details={"kind": created.kind})
        if json_out:
            print_json(created.model_dump(mode="json"))
            return
        console.print(f"alert rule {created.id} [bold]{escape(created.name)}[/bold]: {escape(_condition(created))}")
        console.print(f"webhook signing secret: [bold]{created.webhook_secret}[/bold]\nIt is shown only now.")


@rules.command("remove")
def remove(rule_id: RuleId) -> None:
    """Delete a rule; the alerts it fired stay."""
    from patron.alerts.service import delete_rule

    with fail_on_error():
        runtime = open_runtime()
        removed = delete_rule(runtime.store, rule_id)
        record(runtime.store, _actor(), "alert_rule.delete", f"alert_rule:{rule_id}", details={"name": removed.name})
        console.print(f"alert rule {rule_id} ({escape(removed.name)}) deleted")


def _switch(rule_id: int, enabled: bool) -> None:
    from patron.alerts.schemas import AlertRuleUpdate
    from patron.alerts.service import update_rule

    with fail_on_error():
        runtime = open_runtime()
        changed = update_rule(runtime.store, rule_id, AlertRuleUpdate(enabled=enabled))
        action = "alert_rule.enable" if enabled else "alert_rule.disable"
        record(runtime.store, _actor(), action, f"alert_rule:{rule_id}")
        console.print(f"alert rule {rule_id} ({escape(changed.name)}) {'enabled' if enabled else 'disabled'}")


@rules.command("enable")
def enable(rule_id: RuleId) -> None:
    """Switch a rule on."""
    _switch(rule_id, True)


@rules.command("disable")
def disable(rule_id: RuleId) -> None:
    """Switch a rule off (it keeps its alerts and its secret)."""
    _switch(rule_id, False)


@app.command("check")
def check(
    days: Annotated[
        int | None, typer.Option(min=1, max=366, help="Judge each of the build's last N days, not only the last.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Check every enabled rule on the current build; record and deliver what fires (once per rule and day)."""
    from patron.alerts.service import check_alerts

    with fail_on_error():
        runtime = open_runtime()
        with err_console.status("checking alert rules", spinner="dots") if not json_out else nullcontext():
            fired = check_alerts(runtime, days)
        record(runtime.store, _actor(), "alerts.check", None, details={"days": days or 1, "new_alerts": len(fired)})
        if json_out:
            print_json([alert.model_dump(mode="json") for alert in fired])
            return
        if not fired:
            console.print("no new alerts")
            return
        console.print(_alerts_table(fired, f"{len(fired)} new alert(s)"))
        for alert in fired:
            console.print(f"• {escape(alert.message)}")


@app.command("list")
def list_command(
    rule: Annotated[int | None, typer.Option(min=1, help="Only this rule's alerts.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only alerts on this metric.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (inclusive).")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_out: JsonOut = False,
) -> None:
    """Fired alerts, newest day first."""
    from patron.alerts.series import METRICS
    from patron.alerts.service import list_alerts
    from patron.errors import ValidationError

    with fail_on_error():
        if metric is not None and metric not in METRICS:
            raise ValidationError(f"metric must be one of {', '.join(METRICS)}", field="metric")
        found = list_alerts(
            open_runtime().store,
            page,
            page_size,
            rule_id=rule,
            metric=metric,
            start=_day(start, "start"),
            end=_day(end, "end"),
        )
        if json_out:
            print_json(found.model_dump(mode="json"))
            return
        title = f"Alerts: {len(found.items)} of {found.total} (page {found.page})"
        console.print(_alerts_table(found.items, title) if found.items else "no alerts")


def _day(text: str | None, field: str) -> date | None:
    from patron.errors import ValidationError

    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD): {text!r}", field=field) from None
