"""`patron forecasts`: demand forecasts, their backtest and low-stock warnings of the current build."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.errors import NotFoundError

if TYPE_CHECKING:  # the forecast package loads scikit-learn: only when a command runs
    from patron.forecast.schemas import ForecastPage, ForecastSeries

__all__ = ["app", "backtest", "show", "stock"]

console = Console()
app = typer.Typer(help="Demand forecasts and low-stock warnings of the current build.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


class LevelName(StrEnum):
    product = "product"
    category = "category"


@app.callback()
def forecasts() -> None:
    """Demand forecasts and low-stock warnings of the current build."""


def _current_build() -> tuple[Path, int]:
    from patron.analytics.artefacts import current_manifest

    manifest = current_manifest(open_runtime().settings.artefact_dir)
    if manifest is None:
        raise NotFoundError("nothing built yet: run `patron build`")
    return Path(manifest["path"]), int(manifest["build_id"])


def _wape(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command("show")
def show(
    level: Annotated[LevelName, typer.Option("--level", help="product or category.")] = LevelName.category,
    key: Annotated[
        str | None, typer.Option("--key", help="One product key or category; without it, the largest are listed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Series listed without --key.")] = 20,
    json_out: JsonOut = False,
) -> None:
    """Daily forecast (baseline and learned model) of one series, or the series with the largest forecast."""
    from patron.forecast.service import forecast_page

    with fail_on_error():
        build_dir, _ = _current_build()
        result = forecast_page(build_dir, level.value, key, 1, 1 if key else limit)
        if json_out:
            print_json(result.model_dump(mode="json"))
        elif key is None:
            _print_series_list(result)
        else:
            _print_one_series(result.items[0])


def _print_series_list(result: ForecastPage) -> None:
    title = f"{result.level} forecasts from {result.as_of}"
    table = Table("key", "title", f"forecast, {result.horizon_days} days", "last 28 days", title=title)
    for s in result.items:
        recent = sum(p.units for p in s.history[-28:])
        table.add_row(s.key, s.title or "", f"{s.forecast_units:,.1f}", f"{recent:,}")
    console.print(table)
    console.print(f"{result.total:,} {result.level} series; show one with --key")


def _print_one_series(series: ForecastSeries) -> None:
    table = Table("day", "baseline", "forecast", title=f"{series.key} {series.title or ''}".strip())
    for p in series.forecast:
        table.add_row(p.day.isoformat(), f"{p.baseline:,.1f}", f"{p.forecast:,.1f}")
    console.print(table)
    past = series.history[-28:]
    console.print(
        f"last {len(past)} days: {sum(p.units for p in past):,} units; "
        f"next {len(series.forecast)} days: {series.forecast_units:,.1f} forecast"
    )


@app.command("backtest")
def backtest(json_out: JsonOut = False) -> None:
    """Backtest WAPE of the baseline and the learned model per level (rolling origins)."""
    from patron.forecast.service import forecast_report

    with fail_on_error():
        build_dir, build_id = _current_build()
        report = forecast_report(build_dir, build_id)
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        scores = report.backtest
        title = f"Backtest: {scores.windows} windows of {scores.horizon_days} days before {report.as_of}"
        table = Table("level", "window", "series", "units", "baseline WAPE", "model WAPE", title=title)
        for level, score in scores.levels.items():
            for w in score.windows:
                table.add_row(
                    level,
                    f"{w.start} .. {w.end}",
                    f"{w.series:,}",
                    f"{w.actual_units:,.0f}",
                    _wape(w.baseline_wape),
                    _wape(w.model_wape),
                )
            table.add_row(
                level,
                "all",
                f"{score.series:,}",
                f"{score.actual_units:,.0f}",
                _wape(score.baseline_wape),
                _wape(score.model_wape),
                style="bold",
            )
        console.print(table)
        if scores.reason:
            console.print(scores.reason)
        console.print(f"forecast step: {report.timings.get('total_s', 0.0):.1f} s")


@app.command("stock")
def stock(
    limit: Annotated[int, typer.Option(min=1, max=500, help="Warnings shown.")] = 50,
    json_out: JsonOut = False,
) -> None:
    """Products whose projected stock falls under their threshold within the lead time."""
    from patron.forecast.service import stock_warning_page

    with fail_on_error():
        build_dir, _ = _current_build()
        result = stock_warning_page(build_dir, 1, limit)
        if json_out:
            print_json(result.model_dump(mode="json"))
            return
        table = Table(
            "product",
            "title",
            "on hand",
            "lead time",
            "threshold",
            "crosses on",
            "cover (days)",
            "order",
            title=f"Low-stock warnings as of {result.as_of}",
        )
        for w in result.items:
            cover = "-" if w.days_of_cover is None else f"{w.days_of_cover:.1f}"
            table.add_row(
                w.product_key,
                w.title or "",
                f"{w.on_hand:,}",
                f"{w.lead_time_days} d",
                f"{w.threshold:,}",
                w.crosses_on.isoformat(),
                cover,
                f"{w.suggested_order:,}",
            )
        console.print(table)
        console.print(
            f"{result.total:,} products warned"
            + (f", {len(result.items)} shown" if result.total > len(result.items) else "")
        )
