"""`patron privacy`: Members' consents and data-subject requests (export, correction, restriction, erasure)."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Members' consents and data-subject requests (export, correction, restriction, erasure).", no_args_is_help=True
)
