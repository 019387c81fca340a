"""`patron loyalty`: Loyalty program: tiers, earning rules and scheduled jobs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Loyalty program: tiers, earning rules and scheduled jobs.", no_args_is_help=True)
