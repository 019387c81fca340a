"""`patron retention`: Retention periods per data category and the purge job."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="Retention periods per data category and the purge job.", no_args_is_help=True)
