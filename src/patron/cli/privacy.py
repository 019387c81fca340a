"""`patron privacy`: Members' consents and data-subject requests (export, correction, restriction, erasure)."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json
from patron.consent.rules import ConsentState, Purpose
from patron.privacy.schemas import (
    Correction,
    DueFilter,
    Execution,
    PrivacyRequestCreate,
    PrivacyRequestRead,
    RequestKind,
)
from patron.runtime import Runtime

__all__ = ["app", "consent_app", "requests_app"]

console = Console()
app = typer.Typer(
    help="Members' consents and data-subject requests (export, correction, restriction, erasure).", no_args_is_help=True
)
consent_app = typer.Typer(help="A member's consent per purpose and its history.", no_args_is_help=True)
requests_app = typer.Typer(help="Data-subject requests and their 30-day deadline.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
app.add_typer(requests_app, name="requests")

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
MemberKey = Annotated[str, typer.Argument(help="The member's opaque key.")]
RequestId = Annotated[int, typer.Argument(min=1, help="The request's number.")]
Note = Annotated[str, typer.Option("--note", help="How the request arrived; no personal data.")]


@app.callback()
def privacy() -> None:
    """Members' consents and data-subject requests (export, correction, restriction, erasure)."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _validated(model: Any, fields: dict[str, Any]) -> Any:
    from pydantic import ValidationError as PydanticError

    try:
        return model.model_validate(fields)
    except PydanticError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        err_console.print(f"[red]error ({'.'.join(map(str, first['loc']))}):[/red] {escape(message)}")
        raise typer.Exit(1) from None


# --- consent ---------------------------------------------------------------------------


@consent_app.command("show")
def consent_show(member_key: MemberKey, json_out: JsonOut = False) -> None:
    """Show a member's state per purpose (defaults where never asked) and any restriction."""
    from patron.consent.service import member_consents

    with fail_on_error():
        found = member_consents(open_runtime().store, member_key)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    table = Table(
        "purpose", "state", "allowed", "asked", "source", "when", "evidence", title=f"Consents of {member_key}"
    )
    for c in found.consents:
        when = c.at.isoformat(timespec="seconds") if c.at else ""
        allowed = "yes" if c.allowed else "no"
        table.add_row(
            c.purpose, c.state, allowed, "yes" if c.asked else "no (default)", c.source or "", when, escape(c.evidence)
        )
    console.print(table)
    if found.restriction is not None:
        r = found.restriction
        console.print(f"processing restricted since {r.since.isoformat(timespec='seconds')} ({r.reason})")


@consent_app.command("set")
def consent_set(
    member_key: MemberKey,
    purpose: Annotated[
        Purpose, typer.Argument(help="marketing_email, marketing_sms, marketing_push, personalization, analytics.")
    ],
    state: Annotated[ConsentState, typer.Argument(help="granted, denied or withdrawn.")],
    evidence: Annotated[str, typer.Option("--evidence", help="A note without personal data (form version...).")] = "",
    at: Annotated[
        datetime | None, typer.Option("--at", help="When the member said so (ISO 8601; default now).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Record a member's consent statement for a purpose (source: cli)."""
    from patron.consent.service import set_consent

    actor = _actor()
    with fail_on_error():
        runtime = open_runtime()
        result = set_consent(
            runtime.store, member_key, purpose, state, source="cli", actor=actor, evidence=evidence, at=at
        )
        record(runtime.store, actor, "consent.set", member_key, details={"purpose": purpose, "state": state})
    if json_out:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"{member_key} {purpose}: {result.state} ({'allowed' if result.allowed else 'not allowed'})")


@consent_app.command("history")
def consent_history_command(
    member_key: MemberKey,
    purpose: Annotated[Purpose | None, typer.Option("--purpose", help="Only this purpose.")] = None,
    json_out: JsonOut = False,
) -> None:
    """List a member's recorded consent statements, newest first."""
    from patron.consent.service import MAX_PAGE_SIZE, consent_history

    with fail_on_error():
        found = consent_history(open_runtime().store, member_key, purpose, 1, MAX_PAGE_SIZE)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    table = Table("id", "when", "purpose", "state", "source", "by", "evidence", title=f"{found.total} statements")
    for e in found.items:
        at = e.at.isoformat(timespec="seconds")
        table.add_row(str(e.id), at, e.purpose, e.state, e.source, escape(e.actor), escape(e.evidence))
    console.print(table)


# --- requests --------------------------------------------------------------------------


def _requests_table(items: list[PrivacyRequestRead], title: str) -> Table:
    table = Table("id", "kind", "member", "status", "received", "due", "days left", "handled by", title=title)
    for r in items:
        left = "" if r.days_left is None else (f"[red]{r.days_left} (overdue)[/red]" if r.overdue else str(r.days_left))
        table.add_row(
            str(r.id),
            r.kind,
            r.member_key,
            r.status,
            r.received_at.date().isoformat(),
            r.due_at.date().isoformat(),
            left,
            escape(r.handled_by or ""),
        )
    return table


@requests_app.command("list")
def requests_list(
    due: Annotated[
        DueFilter | None, typer.Option("--due", help="open, overdue, or due within 7 days (due_soon).")
    ] = None,
    member: Annotated[str | None, typer.Option("--member", help="Only this member's requests.")] = None,
    json_out: JsonOut = False,
) -> None:
    """List requests with their deadline; with --due the most urgent first."""
    from patron.privacy.service import MAX_PAGE_SIZE, list_requests

    with fail_on_error():
        found = list_requests(open_runtime().store, due=due, member_key=member, page_size=MAX_PAGE_SIZE)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    console.print(_requests_table(found.items, f"{found.total} requests"))


def _file(
    runtime: Runtime, kind: RequestKind, member_key: str, note: str, received: datetime | None
) -> PrivacyRequestRead:
    from patron.privacy.service import create_request

    actor = _actor()
    body = _validated(
        PrivacyRequestCreate, {"kind": kind, "member_key": member_key, "note": note, "received_at": received}
    )
    created = create_request(runtime.store, body, actor)
    details = {"request_id": created.id, "kind": kind}
    record(runtime.store, actor, "privacy.request", member_key, details=details)
    return created


@requests_app.command("create")
def requests_create(
    kind: Annotated[RequestKind, typer.Argument(help="export, correction, restriction or erasure.")],
    member_key: MemberKey,
    note: Note = "",
    received: Annotated[
        datetime | None, typer.Option("--received", help="When the member made it (ISO 8601; default now).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """File a member's request; it is due 30 days after it was received."""
    with fail_on_error():
        created = _file(open_runtime(), kind, member_key, note, received)
    if json_out:
        print_json(created.model_dump(mode="json"))
        return
    console.print(f"request {created.id} ({kind}) filed, due {created.due_at.date().isoformat()}")


@requests_app.command("show")
def requests_show(request_id: RequestId, json_out: JsonOut = False) -> None:
    """Show one request with its deadline and outcome."""
    from patron.privacy.service import get_request

    with fail_on_error():
        found = get_request(open_runtime().store, request_id)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    console.print(_requests_table([found], f"request {found.id}"))
    if found.outcome:
        console.print(f"outcome: {json.dumps(found.outcome, sort_keys=True)}")


@requests_app.command("start")
def requests_start(request_id: RequestId, json_out: JsonOut = False) -> None:
    """Mark a request as being handled by you."""
    from patron.privacy.service import start_request

    actor = _actor()
    with fail_on_error():
        runtime = open_runtime()
        started = start_request(runtime.store, request_id, actor)
        record(runtime.store, actor, "privacy.start", started.member_key, details={"request_id": request_id})
    if json_out:
        print_json(started.model_dump(mode="json"))
        return
    console.print(f"request {request_id} is in progress")


@requests_app.command("reject")
def requests_reject(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept as the request's note; no personal data).")],
    json_out: JsonOut = False,
) -> None:
    """Close a request without carrying it out."""
    from patron.privacy.service import reject_request

    actor = _actor()
    with fail_on_error():
        runtime = open_runtime()
        rejected = reject_request(runtime.store, request_id, reason, actor)
        record(runtime.store, actor, "privacy.reject", rejected.member_key, details={"request_id": request_id})
    if json_out:
        print_json(rejected.model_dump(mode="json"))
        return
    console.print(f"request {request_id} rejected")


def _run(runtime: Runtime, request_id: int, correction: Correction | None = None) -> Execution:
    from patron.privacy.service import execute

    actor = _actor()
    done = execute(runtime, request_id, actor, correction)
    details = {"request_id": request_id, "kind": done.request.kind, **done.request.outcome}
    record(runtime.store, actor, f"privacy.{done.request.kind}", done.request.member_key, details=details)
    return done


def _report(done: Execution, out: Path | None, json_out: bool) -> None:
    if done.export is not None and out is not None:
        out.write_text(json.dumps(done.export, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out.chmod(0o600)  # it holds the member's personal data
    if json_out:
        print_json({"request": done.request.model_dump(mode="json"), "export": None if out else done.export})
        return
    r = done.request
    console.print(f"request {r.id} ({r.kind}) completed for {r.member_key}: {json.dumps(r.outcome, sort_keys=True)}")
    if done.export is not None and out is not None:
        console.print(f"export written to {out}")
    elif done.export is not None:
        console.print_json(json.dumps(done.export, ensure_ascii=False))


Out = Annotated[Path | None, typer.Option("--out", help="Write an export's JSON document to this file.")]


@requests_app.command("execute")
def requests_execute(request_id: RequestId, out: Out = None, json_out: JsonOut = False) -> None:
    """Carry out an open export, restriction or erasure request and complete it (corrections: `privacy correct`)."""
    with fail_on_error():
        done = _run(open_runtime(), request_id)
    _report(done, out, json_out)


# --- the rights in one step --------------------------------------------------------------


@app.command("export")
def export_command(member_key: MemberKey, out: Out = None, note: Note = "", json_out: JsonOut = False) -> None:
    """File and carry out an export: the member's data as one JSON document."""
    with fail_on_error():
        runtime = open_runtime()
        done = _run(runtime, _file(runtime, "export", member_key, note, None).id)
    _report(done, out, json_out)


@app.command("correct")
def correct_command(
    member_key: MemberKey,
    name: Annotated[str | None, typer.Option("--name", help="The corrected name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="The corrected e-mail address.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The corrected phone number.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="The corrected postal address.")] = None,
    birthday: Annotated[str | None, typer.Option("--birthday", help="The corrected birthday (YYYY-MM-DD).")] = None,
    request_id: Annotated[
        int | None, typer.Option("--request", min=1, help="An open correction request to complete (default: file one).")
    ] = None,
    note: Note = "",
    json_out: JsonOut = False,
) -> None:
    """Correct a member's personal fields (audited by field name, never by value)."""
    given = {"name": name, "email": email, "phone": phone, "address": address, "birthday": birthday}
    correction = _validated(Correction, {k: v for k, v in given.items() if v is not None})
    with fail_on_error():
        runtime = open_runtime()
        number = request_id or _file(runtime, "correction", member_key, note, None).id
        done = _run(runtime, number, correction)
    _report(done, None, json_out)


@app.command("restrict")
def restrict_command(member_key: MemberKey, note: Note = "", json_out: JsonOut = False) -> None:
    """File and carry out a restriction: the member's data is kept but no longer processed."""
    with fail_on_error():
        runtime = open_runtime()
        done = _run(runtime, _file(runtime, "restriction", member_key, note, None).id)
    _report(done, None, json_out)


@app.command("lift")
def lift_command(member_key: MemberKey, json_out: JsonOut = False) -> None:
    """Lift a restriction of processing (an erased member's stays)."""
    from patron.consent.service import lift_restriction

    actor = _actor()
    with fail_on_error():
        runtime = open_runtime()
        lifted = lift_restriction(runtime.store, member_key)
        record(runtime.store, actor, "privacy.lift_restriction", member_key, details={"request_id": lifted.request_id})
    if json_out:
        print_json(lifted.model_dump(mode="json"))
        return
    console.print(f"restriction of {member_key} lifted")


@app.command("erase")
def erase_command(
    member_key: MemberKey,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    note: Note = "",
    json_out: JsonOut = False,
) -> None:
    """File and carry out an erasure: personal data shredded, points forfeited, orders kept anonymously."""
    if not yes:
        err_console.print("[red]error (--yes):[/red] erasure cannot be undone; confirm with --yes")
        raise typer.Exit(1)
    with fail_on_error():
        runtime = open_runtime()
        done = _run(runtime, _file(runtime, "erasure", member_key, note, None).id)
    _report(done, None, json_out)
