"""`patron recs`: Recommendations: train, evaluate, serve and compare models."""

from __future__ import annotations

import typer

app = typer.Typer(help="Recommendations: train, evaluate, serve and compare models.", no_args_is_help=True)
