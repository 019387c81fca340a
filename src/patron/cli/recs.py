"""`patron recs`: Recommendations: train, evaluate, serve and compare models."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.errors import ValidationError

if TYPE_CHECKING:
    from patron.recs.registry import PlacementRead

__all__ = ["app"]

console = Console()
app = typer.Typer(help="Recommendations: train, evaluate, serve and compare models.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Placement = Annotated[str, typer.Argument(help="The placement's name, e.g. home, pdp_similar, cart.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _placement_line(p: PlacementRead) -> str:
    shares = ", ".join(f"{v.name}={v.version_id} ({v.share_bp / 100:g}%)" for v in p.variants)
    return f"{p.name} [{p.kind}] revision {p.revision}: {shares}"


@app.command("train")
def train(
    model: Annotated[str, typer.Argument(help="A registered model: popularity, itemknn, als, ease, ...")],
    params: Annotated[str, typer.Option(help="Hyper-parameters as a JSON object, e.g. '{\"k\": 50}'.")] = "{}",
    json_out: JsonOut = False,
) -> None:
    """Train a model version on the warehouse and record it (training → ready or failed)."""
    from patron.cli.progress import RichProgress
    from patron.recs.registry import train as train_version

    with fail_on_error():
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not JSON: {exc}", field="params") from None
        if not isinstance(parsed, dict):
            raise ValidationError("params must be a JSON object", field="params")
        runtime = open_runtime()
        with RichProgress(console, enabled=not json_out) as progress:
            version = train_version(runtime, model, parsed, _actor(), progress=progress)
        record(runtime.store, _actor(), "rec_version.train", f"rec_version:{version.id}", details={"model": model})
        if json_out:
            print_json(version.model_dump(mode="json"))
            return
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in (version.metrics or {}).items() if isinstance(v, float))
        console.print(f"version [bold]{version.id}[/bold] ready; {escape(metrics) or 'no offline metrics'}")


@app.command("versions")
def versions(
    model: Annotated[str | None, typer.Option(help="Only versions of this model.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Model versions, newest first, with their status and offline metrics."""
    from patron.recs.registry import list_versions

    with fail_on_error():
        found = list_versions(open_runtime().store, model)
        if json_out:
            print_json([v.model_dump(mode="json") for v in found])
            return
        table = Table("id", "model", "status", "as of", "metrics", title="Model versions")
        for v in found:
            metrics = ", ".join(f"{k} {m:.4f}" for k, m in (v.metrics or {}).items() if isinstance(m, float))
            table.add_row(v.id, v.model, v.status, v.as_of.date().isoformat() if v.as_of else "—", escape(metrics))
        console.print(table if found else "no model versions yet: `patron recs train --help`")


@app.command("placements")
def placements(json_out: JsonOut = False) -> None:
    """Placements with their variants and traffic shares."""
    from patron.recs.registry import list_placements

    with fail_on_error():
        found = list_placements(open_runtime().store)
        if json_out:
            print_json([p.model_dump(mode="json") for p in found])
            return
        for p in found:
            console.print(escape(_placement_line(p)))
        if not found:
            console.print("no placements yet: `patron recs activate --help`")


def _variants(version: str | None, variant: list[str] | None) -> list[Any]:
    from patron.recs.registry import VariantIn

    if (version is None) == (not variant):
        raise ValidationError("give either --version or one --variant per variant", field="variant")
    if version is not None:
        return [VariantIn(name="main", version_id=version, share_bp=10_000)]
    out = []
    for spec in variant or []:
        name, _, rest = spec.partition("=")
        version_id, _, share = rest.rpartition(":")
        if not (name and version_id and share.isdigit()):
            raise ValidationError(f"{spec!r} is not NAME=VERSION:SHARE_BP", field="variant")
        out.append(VariantIn(name=name, version_id=version_id, share_bp=int(share)))
    return out


@app.command("activate")
def activate(
    placement: Placement,
    version: Annotated[str | None, typer.Option(help="Serve this version to all traffic.")] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VERSION:SHARE_BP, repeated; shares sum to 10000 (an A/B split)."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="For a new placement: member, similar, bought_together or session.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Put a version (or an A/B split of versions) on a placement; the change is kept in its history."""
    from patron.recs.registry import set_variants

    with fail_on_error():
        runtime = open_runtime()
        if kind not in (None, "member", "similar", "bought_together", "session"):
            raise ValidationError(f"unknown kind {kind!r}", field="kind")
        changed = set_variants(runtime.store, placement, _variants(version, variant), _actor(), kind)  # type: ignore[arg-type]
        variants = [v.model_dump() for v in changed.variants]
        record(
            runtime.store,
            _actor(),
            "rec_placement.update",
            f"rec_placement:{placement}",
            details={"variants": variants},
        )
        if json_out:
            print_json(changed.model_dump(mode="json"))
            return
        console.print(escape(_placement_line(changed)))


@app.command("rollback")
def rollback(placement: Placement, json_out: JsonOut = False) -> None:
    """Restore the placement's previous configuration (again to go further back)."""
    from patron.recs.registry import rollback as roll_back

    with fail_on_error():
        runtime = open_runtime()
        restored = roll_back(runtime.store, placement, _actor())
        record(
            runtime.store,
            _actor(),
            "rec_placement.rollback",
            f"rec_placement:{placement}",
            details={"revision": restored.revision},
        )
        if json_out:
            print_json(restored.model_dump(mode="json"))
            return
        console.print("rolled back: " + escape(_placement_line(restored)))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


@app.command("compare")
def compare(
    placement: Placement,
    control: Annotated[str | None, typer.Option(help="The control variant (default: the first).")] = None,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
    json_out: JsonOut = False,
) -> None:
    """CTR and conversion per variant with Wilson intervals, each against the control."""
    from patron.recs.service import compare as compare_variants

    with fail_on_error():
        report = compare_variants(open_runtime().store, placement, control, confidence)
        if json_out:
            print_json(report.model_dump(mode="json"))
            return
        level = f"{confidence:.0%}"
        table = Table(
            "variant",
            "units",
            "impressions",
            "CTR",
            f"CTR {level} CI",
            "Δ CTR (p)",
            "conversion",
            f"conv. {level} CI",
            "Δ conv. (p)",
            title=f"{placement}: variants against {report.control}",
        )
        for v in report.variants:
            row = [v.variant + (" (control)" if v.is_control else ""), f"{v.units:,}", f"{v.impressions:,}"]
            for metric in (v.ctr, v.conversion):
                r, d = metric.rate, metric.vs_control
                row += [_pct(r.rate), f"{_pct(r.low)} to {_pct(r.high)}"]
                row.append(
                    "—"
                    if d is None or d.difference is None
                    else f"{100 * d.difference:+.2f} pts (p={d.p_value:.3g})"
                    if d.p_value is not None
                    else d.reason or "—"
                )
            table.add_row(*row)
        console.print(table)


def _reason_text(args: dict[str, str]) -> str:
    return args.get("title") or args.get("item_id") or args.get("segment") or ""


@app.command("recommend")
def recommend(
    member_key: Annotated[str, typer.Argument(help="The member's key (m + 16 hex digits).")],
    placement: Annotated[str, typer.Option(help="A member placement.")] = "home",
    k: Annotated[int, typer.Option(min=1, max=200)] = 10,
    price_max: Annotated[float | None, typer.Option(min=0)] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="An item to leave out (repeatable).")] = None,
    json_out: JsonOut = False,
) -> None:
    """A member's recommendations from the placement's variant for them, with reasons."""
    from patron.recs.service import request_of, serve

    with fail_on_error():
        store = open_runtime().store
        rules = request_of(k=k, price_max=price_max, exclude=exclude)
        served = serve(store, placement, "member", member_key, lambda e: e.for_member(member_key, rules))
        if json_out:
            print_json(served.model_dump(mode="json"))
            return
        table = Table(
            "#", "item", "score", "reason", title=f"{member_key} on {placement}: {served.variant} ({served.source})"
        )
        for n, item in enumerate(served.items, start=1):
            why = f"{item.reason} {_reason_text(item.reason_args)}".strip()
            table.add_row(str(n), escape(item.item_id), f"{item.score:.4f}", escape(why))
        console.print(table)


from patron.cli.recs_evaluate import evaluate  # noqa: E402

app.command("evaluate")(evaluate)
