"""`patron keys`: Master key and member data keys: status, rotation."""

from __future__ import annotations

import base64
import getpass
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress
from patron.errors import ValidationError
from patron.settings import parse_keyring

__all__ = ["app", "generate", "retire", "rotate", "status"]

console = Console(stderr=True)
app = typer.Typer(help="Master key and member data keys: status, rotation.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command("status")
def status(json_out: JsonOption = False) -> None:
    """List the master keys (newest first), which is active, and how many keys each still wraps."""
    from patron.keys.rotation import key_status

    with fail_on_error():
        report = key_status(open_runtime())
    if json_out:
        print_json(report.as_dict())
        return
    table = Table(title=f"Master keys (keyring from the {report.source})")
    for name in ("key id", "state", "member data keys", "system keys"):
        table.add_column(name, justify="right" if "keys" in name else "left")
    for key in report.keys:
        state = "active" if key.active else ("older" if key.in_keyring else "[red]missing from the keyring[/]")
        table.add_row(key.key_id, state, f"{key.member_keys:,}", f"{key.system_keys:,}")
    console.print(table)
    if report.legacy_entries:
        console.print(f"{report.legacy_entries:,} vault entries are sealed the older way; a rotation converts them.")
    if report.pending:
        console.print("A rotation is unfinished: run `patron keys rotate` to finish it.")


def _read_new_key(path: Path) -> bytes:
    keys = parse_keyring(path.read_text(encoding="utf-8"))
    if len(keys) != 1:
        raise ValidationError(f"{path.name} must hold exactly one key, not {len(keys)}", "new_key_file")
    return keys[0]


@app.command("rotate")
def rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="A file holding the new master key (base64 of 32 bytes); without it a random key is made.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Rotate to a new master key and rewrap every key under it, or finish an unfinished rotation.

    The key file gets the new key first and keeps the older ones until `patron keys retire`.
    With PATRON_MASTER_KEY, put the new key first there and run this to move everything to it.
    Safe to interrupt and run again; the API keeps serving meanwhile.
    """
    from patron.keys.rotation import rotate as run_rotation

    with fail_on_error():
        runtime = open_runtime()
        new_key = None if new_key_file is None else _read_new_key(new_key_file)
        with RichProgress(console, enabled=not json_out) as progress:
            report = run_rotation(runtime, actor=_actor(), new_key=new_key, progress=progress)
    if json_out:
        print_json(report.as_dict())
    else:
        verb = "Rotated to the new" if report.created else "Finished the rotation to"
        console.print(
            f"[green]{verb} master key {report.target}:[/] {report.member_keys:,} member data keys and "
            f"{report.system_keys:,} system keys rewrapped, {report.converted:,} older vault entries converted."
        )
        if report.complete and report.previous:
            console.print(f"Nothing is wrapped under {', '.join(report.previous)} any more: `patron keys retire` it.")
        elif not report.complete:
            console.print(f"[yellow]{report.remaining:,} rows are still under an older key:[/] run it again.")
    if not report.complete:
        raise typer.Exit(1)


@app.command("retire")
def retire(
    key_id: Annotated[str, typer.Argument(help="The id of the older master key (see `patron keys status`).")],
    json_out: JsonOption = False,
) -> None:
    """Remove an older master key from the keyring; refused while anything is still wrapped under it."""
    from patron.keys.rotation import retire as run_retire

    with fail_on_error():
        removed = run_retire(open_runtime(), key_id, actor=_actor())
    if json_out:
        print_json({"retired": key_id, "removed_from_key_file": removed})
    elif removed:
        console.print(f"[green]Master key {key_id} was removed from the key file.[/] Keep it offline for old backups.")
    else:
        console.print(f"Nothing is wrapped under {key_id} any more: remove it from PATRON_MASTER_KEY.")


@app.command("generate")
def generate() -> None:
    """Print a new random master key (base64) for PATRON_MASTER_KEY or --new-key-file."""
    sys.stdout.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
