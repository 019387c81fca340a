"""`patron keys`: Master key and member data keys: status, rotation."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="Master key and member data keys: status, rotation.", no_args_is_help=True)
