"""`patron promotions`: Coupons, promotions, cart pricing and the rewards catalog."""

from __future__ import annotations

import typer

app = typer.Typer(help="Coupons, promotions, cart pricing and the rewards catalog.", no_args_is_help=True)
