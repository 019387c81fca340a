"""`patron audit`: verify the audit log's hash chain and export it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from patron.audit.chain import iter_entries, verify_chain
from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress

__all__ = ["app", "export", "verify"]

console = Console(stderr=True)
app = typer.Typer(help="The audit log: verify its hash chain, export it.", no_args_is_help=True)


@app.command("verify")
def verify(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Recompute every link of the audit chain; exit 1 and name the first break if it was tampered with."""
    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(console, enabled=not json_out) as progress:
            report = verify_chain(runtime.store, runtime.store.audit_key(), progress)
    if json_out:
        print_json(report.as_dict())
    elif report.ok:
        console.print(f"[green]The audit chain is intact:[/] {report.entries:,} entries.")
        if report.unchained:
            console.print(f"{report.unchained:,} entries predate the chain and are not covered.")
    else:
        console.print(f"[red]The audit chain is broken:[/] {report.problem} (entry id {report.entry_id}).")
    if not report.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write JSON lines here instead of standard output.")
    ] = None,
) -> None:
    """Every chained entry as JSON lines (with its hashes), oldest first."""
    with fail_on_error():
        runtime = open_runtime()
        handle = sys.stdout if output is None else output.open("w", encoding="utf-8")
        try:
            count = 0
            for entry in iter_entries(runtime.store):
                row = {
                    "seq": entry.seq,
                    "id": entry.id,
                    "at": entry.at.isoformat(),
                    "actor": entry.actor,
                    "action": entry.action,
                    "target": entry.target,
                    "source_ip": entry.source_ip,
                    "details": entry.details,
                    "prev_hash": entry.prev_hash,
                    "entry_hash": entry.entry_hash,
                }
                handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        finally:
            if output is not None:
                handle.close()
    if output is not None:
        console.print(f"Wrote {count:,} audit entries to {output}.")
