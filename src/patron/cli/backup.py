"""`patron backup` and `patron restore`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress

__all__ = ["backup", "restore"]

console = Console(stderr=True)


def backup(
    target: Annotated[
        Path, typer.Argument(help="Archive file to write, or a directory to put a dated archive in.")
    ] = Path("."),
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Back up both stores and the built artefacts into one archive (the master key is not included)."""
    from patron.backup import backup as run_backup

    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(console, enabled=not json_out) as progress:
            path, manifest = run_backup(runtime, target, progress)
    if json_out:
        print_json({"archive": str(path), **manifest.as_dict()})
        return
    rows = sum(manifest.operational.values()) + sum(manifest.warehouse.values())
    console.print(f"Backed up {rows:,} rows and {len(manifest.files):,} files to {path}.")
    console.print("Keep the master key apart from the archive: restoring needs it.")


def restore(
    archive: Annotated[
        Path, typer.Argument(help="An archive written by `patron backup`.", exists=True, dir_okay=False)
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the restored manifest as JSON.")] = False,
) -> None:
    """Restore an archive into this data directory, whose stores must be empty (run `patron init` first)."""
    from patron.backup import restore as run_restore

    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(console, enabled=not json_out) as progress:
            manifest = run_restore(runtime, archive, progress)
    if json_out:
        print_json(manifest.as_dict())
        return
    rows = sum(manifest.operational.values()) + sum(manifest.warehouse.values())
    console.print(f"Restored {rows:,} rows from a backup taken {manifest.created_at}.")
