"""`patron recs evaluate`: compare recommendation models offline on a data set and a split protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from patron.cli.common import err_console, fail_on_error, print_json

__all__ = ["evaluate"]

console = Console()


def _models(raw: str | None, registered: list[str]) -> list[str]:
    from patron.errors import ValidationError

    if raw is None or raw.strip() in {"", "all"}:
        return [m for m in registered if m != "hybrid"] + ["hybrid"]
    wanted = [m.strip() for m in raw.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in registered]
    if unknown:
        raise ValidationError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(registered)}", field="models")
    return wanted


def evaluate(
    dataset: Annotated[
        str,
        typer.Option(
            help="movielens-100k, online-retail, taobao (read from ../shared/data), or a CSV/Parquet file with "
            "columns user,item[,weight][,time][,category]."
        ),
    ] = "movielens-100k",
    protocol: Annotated[
        str,
        typer.Option(
            help="ms-stratified (the published MovieLens 75/25 per-user split), random (seeded per-user holdout) "
            "or temporal (a global --cut date, else each user's last active day)."
        ),
    ] = "ms-stratified",
    k: Annotated[int, typer.Option("--k", min=1, help="List length K of every metric.")] = 10,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated registered models (default: every model and the hybrid)."),
    ] = None,
    repeats: Annotated[
        bool | None,
        typer.Option(
            "--repeats/--new-items-only",
            help="Count re-purchases of a user's own items as hits, or rank only items new to the user "
            "(default: repeats for temporal, new items otherwise).",
        ),
    ] = None,
    cut: Annotated[
        str | None, typer.Option(help="Temporal cut date YYYY-MM-DD (default: the data set's reference cut).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random protocol and of the search.")] = 42,
    search_budget: Annotated[
        float,
        typer.Option(
            help="Seconds of hyperparameter search on a validation split carved from train (0: defaults). "
            "The test split is never used to choose parameters."
        ),
    ] = 0.0,
    folds: Annotated[
        int, typer.Option(min=1, help="Validation folds the hybrid's blend is scored on (mean NDCG; steadier).")
    ] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a report: .md (table, with an .svg chart beside it), .svg or .html."),
    ] = None,
) -> None:
    """Fit every model on the train split and rank all train items for each test user.

    Reports MAP, NDCG, precision and recall at K, catalog coverage, novelty,
    intra-list diversity, and fit and predict seconds per model.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from patron.errors import ValidationError
    from patron.recs.evaluation.datasets import load_dataset
    from patron.recs.evaluation.harness import ModelSpec, evaluate_models
    from patron.recs.evaluation.protocols import PROTOCOLS, make_split
    from patron.recs.evaluation.report import write_report
    from patron.recs.evaluation.search import tune
    from patron.recs.models import load_all

    with fail_on_error():
        if protocol not in PROTOCOLS:
            raise ValidationError(f"unknown protocol {protocol!r}: one of {', '.join(PROTOCOLS)}", field="protocol")
        names = _models(models, sorted(load_all()))
        log = load_dataset(dataset)
        split = make_split(log, protocol, repeats=repeats, cut=cut, seed=seed)
        searches = []
        if search_budget > 0:
            err_console.print(f"searching for {search_budget:.0f} s on the validation split ...")
            validation, *extra = split.validation_folds(folds)
            specs, found = tune(names, validation, seconds=search_budget, k=k, seed=seed, folds=extra)
            searches = [s.model_dump(mode="json", exclude={"trials"}) | {"trials": len(s.trials)} for s in found]
        else:
            specs = [ModelSpec(model=m) for m in names]
        result = evaluate_models(split, specs, k)
        result.searches = searches
        written = write_report(result, report) if report is not None else []
        if json_out:
            print_json(result.model_dump(mode="json"))
            return
        _print(result)
        for path in written:
            console.print(f"wrote {path}")


def _print(result: object) -> None:
    from patron.recs.evaluation.harness import EvaluationReport
    from patron.recs.evaluation.report import COLUMNS, title

    assert isinstance(result, EvaluationReport)
    best = result.best()
    table = Table("model", *(Column(h.format(k=result.k), justify="right") for _, h, _ in COLUMNS), title=title(result))
    for r in result.results:
        if r.error is not None:
            table.add_row(r.label, f"[red]failed[/red]: {r.error}", *([""] * (len(COLUMNS) - 1)))
            continue
        cells = ["-" if getattr(r, f) is None else format(getattr(r, f), fmt) for f, _, fmt in COLUMNS]
        label = f"[bold]{r.label}[/bold]" if r is best else r.label
        table.add_row(label, *cells)
    console.print(table)
    console.print(f"diversity: 1 - cosine of item {result.diversity_by} vectors within each list")
