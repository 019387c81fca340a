"""`patron clv`: fit customer lifetime value models on a per-customer summary CSV."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from patron.cli.common import fail_on_error, print_json
from patron.errors import ValidationError

__all__ = ["app", "fit"]

console = Console()
app = typer.Typer(help="Customer lifetime value models: BG/NBD, Pareto/NBD, Gamma-Gamma.", no_args_is_help=True)


class Model(StrEnum):
    bgnbd = "bgnbd"
    pareto = "pareto"
    gammagamma = "gammagamma"


@app.callback()
def clv() -> None:
    """Customer lifetime value models: BG/NBD, Pareto/NBD, Gamma-Gamma."""


def _read_summary(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", field="summary")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not a readable CSV file: {exc}", field="summary") from None


def _fit(frame: pd.DataFrame, model: Model) -> Any:
    from patron.clv import bgnbd, gamma_gamma, pareto_nbd
    from patron.clv.summary import CustomerSummary

    summary = CustomerSummary.from_frame(frame, monetary=model is Model.gammagamma)
    if model is Model.bgnbd:
        return bgnbd.fit(summary)
    if model is Model.pareto:
        return pareto_nbd.fit(summary)
    return gamma_gamma.fit(summary)


@app.command("fit")
def fit(
    summary: Annotated[
        Path, typer.Argument(help="CSV with frequency, recency, T (and monetary_value for gammagamma).")
    ],
    model: Annotated[Model, typer.Option("--model", help="The model to fit.")] = Model.bgnbd,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Fit a model by maximum likelihood; print its parameters and log-likelihood.

    Column names are lifetimes' (frequency, recency, T, monetary_value) or Hardie's (x, t_x, T, zbar); other
    columns, such as an unnamed index, are ignored.
    """
    with fail_on_error():
        result = _fit(_read_summary(summary), model)
        if json_out:
            print_json(result.to_dict())
            return
        table = Table("parameter", "value", title=f"{model.value} fitted on {result.customers:,} customers")
        for name, value in result.to_dict()["params"].items():
            table.add_row(name, f"{value:.6g}")
        table.add_row("log-likelihood", f"{result.log_likelihood:,.4f}")
        status = "converged" if result.convergence.converged else f"NOT converged: {result.convergence.message}"
        table.add_row("optimiser", f"{status}, {result.convergence.iterations} iterations")
        table.add_row("seconds", f"{result.convergence.seconds:.3f}")
        console.print(table)
