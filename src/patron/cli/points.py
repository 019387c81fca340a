"""`patron points`: Loyalty points: balances, ledger, adjustments and expiry."""

from __future__ import annotations

import getpass
import uuid
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress
from patron.loyalty import ledger_service as points
from patron.loyalty.ledger_schemas import AdjustRequest, JobResult

__all__ = ["app"]

console = Console()
app = typer.Typer(help="Loyalty points: balances, ledger, adjustments and expiry.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
MemberKey = Annotated[str, typer.Argument(help="The member's opaque key.")]
AsOf = Annotated[
    datetime | None, typer.Option("--as-of", help="Judge what is due at this moment (ISO 8601; default now).")
]


@app.callback()
def points_group() -> None:
    """Loyalty points: balances, ledger, adjustments and expiry."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command()
def balance(member_key: MemberKey, json_out: JsonOut = False) -> None:
    """Show a member's available, pending and lifetime points."""
    with fail_on_error():
        found = points.get_balance(open_runtime().store, member_key)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    table = Table("available", "pending", "lifetime earned", "lifetime redeemed", "expiring in 30 days")
    table.title = f"Points of {member_key}"
    table.add_row(
        *(str(v) for v in (found.available, found.pending, found.lifetime_earned)),
        str(found.lifetime_redeemed),
        str(found.expiring_soon),
    )
    console.print(table)


@app.command()
def history(
    member_key: MemberKey,
    page: Annotated[int, typer.Option(min=1, help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500, help="Transactions per page.")] = 20,
    json_out: JsonOut = False,
) -> None:
    """List a member's points transactions, newest first."""
    with fail_on_error():
        found = points.get_history(open_runtime().store, member_key, page, page_size)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    table = Table("id", "when", "kind", "points", "reference", "entries", title=f"{found.total} transactions")
    for txn in found.items:
        entries = ", ".join(f"{e.account} {e.amount:+d}" for e in txn.entries)
        table.add_row(
            str(txn.id),
            txn.created_at.isoformat(timespec="seconds"),
            txn.kind,
            str(txn.points),
            txn.reference or "",
            entries,
        )
    console.print(table)


@app.command()
def adjust(
    member_key: MemberKey,
    points_delta: Annotated[int, typer.Argument(metavar="POINTS", help="Points to credit (negative to debit).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; kept in the ledger and the audit log).")],
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Repeat a key to retry safely (default: a new one).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Correct a member's points by hand, with a reason (audited)."""
    actor = _actor()
    with fail_on_error():
        runtime = open_runtime()
        body = AdjustRequest(points=points_delta, reason=reason)
        txn, replayed = points.adjust_points(
            runtime.store, idempotency_key or str(uuid.uuid4()), member_key, body, actor
        )
        if not replayed:
            details: dict[str, object] = {"points": points_delta, "reason": reason, "txn": txn.id}
            record(runtime.store, actor, "points.adjust", f"member:{member_key}", details=details)
    if json_out:
        print_json({**txn.model_dump(mode="json"), "replayed": replayed})
        return
    note = " (replayed)" if replayed else ""
    console.print(f"adjusted {member_key} by {points_delta:+d} points: transaction {txn.id}{note}")


def _job_done(result: JobResult, json_out: bool) -> None:
    if json_out:
        print_json(result.model_dump(mode="json"))
    else:
        console.print(f"{result.job}: {result.lots} lots as of {result.as_of.isoformat(timespec='seconds')}")


@app.command()
def expire(as_of: AsOf = None, json_out: JsonOut = False) -> None:
    """Expire the points due (one member at a time, with progress)."""
    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(console, enabled=not json_out) as bar:
            started = False

            def progress(done: int, total: int) -> None:
                nonlocal started
                if not started:
                    bar.stage("expiring points", total)
                    started = True
                bar.advance()

            result = points.run_expiry(runtime.store, as_of, progress)
    _job_done(result, json_out)


@app.command()
def activate(as_of: AsOf = None, json_out: JsonOut = False) -> None:
    """Make pending points available once their return window has ended."""
    with fail_on_error():
        result = points.run_activation(open_runtime().store, as_of)
    _job_done(result, json_out)
