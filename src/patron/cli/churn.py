"""`patron churn`: the churn model of the current build against its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from patron.churn.schemas import ScoreMetricsRead
from patron.cli.common import fail_on_error, open_runtime, print_json

__all__ = ["app", "report"]

console = Console()
app = typer.Typer(help="Churn risk: the model's validation report against its baselines.", no_args_is_help=True)

# Report key -> label, in the order shown.
SCORES = (
    ("model", "churn model (boosted trees)"),
    ("bgnbd_no_purchase", "BG/NBD P(no purchase)"),
    ("p_alive", "1 - P(alive)"),
    ("recency", "days since last purchase"),
)


def _number(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _calibration(model: ScoreMetricsRead) -> Table:
    table = Table(
        Column("risk from", justify="right"),
        Column("to", justify="right"),
        Column("members", justify="right"),
        Column("mean predicted", justify="right"),
        Column("observed", justify="right"),
        title="Calibration of the model on the validation window (deciles of predicted risk)",
    )
    for b in model.calibration:
        table.add_row(
            f"{b.lower:.3f}", f"{b.upper:.3f}", f"{b.members:,}", f"{b.mean_predicted:.3f}", f"{b.observed_rate:.3f}"
        )
    return table


@app.callback()
def churn() -> None:
    """Churn risk: the model's validation report against its baselines."""


@app.command("report")
def report(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Validation AUC, precision@10 %, precision@100 and Brier of the model and the baselines."""
    from patron.analytics.artefacts import current_manifest
    from patron.churn.service import read_churn_report
    from patron.errors import NotFoundError

    with fail_on_error():
        manifest = current_manifest(open_runtime().settings.artefact_dir)
        if manifest is None:
            raise NotFoundError("nothing built yet: run `patron build`")
        result = read_churn_report(Path(manifest["path"]))
        if json_out:
            print_json(result.model_dump(mode="json"))
            return
        if result.status != "ok":
            console.print(f"[yellow]no churn model in this build:[/yellow] {result.reason}")
            return
        assert result.validation is not None and result.training is not None
        table = Table(
            "score",
            Column("AUC", justify="right"),
            Column("precision@10%", justify="right"),
            Column("precision@100", justify="right"),
            Column("Brier", justify="right"),
            title=f"Churn within {result.horizon_days} days, validated on the window from "
            f"{result.validation.cut_off:%Y-%m-%d} ({result.validation.members:,} members, "
            f"{_number(result.validation.churn_rate, '.1%')} churned)",
        )
        for key, label in SCORES:
            metrics = result.metrics.get(key)
            if metrics is None:
                table.add_row(label, "not available", "", "", "")
                continue
            table.add_row(
                label,
                _number(metrics.auc),
                _number(metrics.precision_top_decile),
                _number(metrics.precision_at_100),
                _number(metrics.brier),
            )
        console.print(table)
        model = result.metrics.get("model")
        if model is not None:
            console.print(_calibration(model))
        top = ", ".join(f"{f.feature} ({f.auc_drop:.3f})" for f in result.feature_importance[:5])
        console.print(f"trained on {result.training.members:,} members at {result.training.cut_off:%Y-%m-%d}")
        console.print(f"most important features (drop in AUC when shuffled): {top}")
