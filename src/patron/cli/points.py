"""`patron points`: Loyalty points: balances, ledger, adjustments and expiry."""

from __future__ import annotations

import typer

app = typer.Typer(help="Loyalty points: balances, ledger, adjustments and expiry.", no_args_is_help=True)
