"""The `patron` command line."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patron import __version__
from patron.audit.service import record
from patron.cli import (
    admin,
    alerts,
    audit,
    backup,
    churn,
    clv,
    data,
    demo,
    forecasts,
    keys,
    loyalty,
    points,
    privacy,
    promotions,
    recs,
    retention,
    tags,
)
from patron.cli.common import close_runtimes, fail_on_error, open_runtime, print_json
from patron.errors import StoreError, WarehouseBusyError

app = typer.Typer(
    name="patron",
    help="Patron: member intelligence and precision marketing for e-commerce.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(demo.app, name="demo")
app.add_typer(clv.app, name="clv")
app.add_typer(tags.app, name="tags")
app.add_typer(alerts.app, name="alerts")
app.add_typer(churn.app, name="churn")
app.add_typer(forecasts.app, name="forecasts")
app.add_typer(recs.app, name="recs")
app.add_typer(points.app, name="points")
app.add_typer(loyalty.app, name="loyalty")
app.add_typer(promotions.app, name="promotions")
app.add_typer(admin.operators, name="operators")
app.add_typer(admin.api_keys, name="api-keys")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(privacy.app, name="privacy")
app.add_typer(retention.app, name="retention")
app.add_typer(data.imports, name="imports")
app.command("import")(data.import_file)
app.command("build")(data.build)
app.command("segments")(data.segments)
app.command("kpis")(data.kpis)
app.command("cohorts")(data.cohorts)
app.command("funnels")(data.funnels)
app.command("repurchase")(data.repurchase)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"patron {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Patron: member intelligence and precision marketing for e-commerce."""
    ctx.call_on_close(close_runtimes)


@app.command()
def init() -> None:
    """Create the data directory, the master key and both stores (safe to repeat)."""
    with fail_on_error():
        runtime = open_runtime(require_init=False)
        runtime.settings.home.mkdir(parents=True, exist_ok=True)
        created = runtime.settings.ensure_key_file()
        runtime.store.migrate()
        with runtime.warehouse() as warehouse:
            warehouse.ensure_schema()
        record(runtime.store, f"cli:{getpass.getuser()}", "system.init")
        console.print(f"[green]Patron is ready[/green] in {runtime.settings.home}")
        if created:
            console.print(f"A new master key was written to {runtime.settings.key_file} (keep a backup).")


def _status(runtime: Any) -> dict[str, Any]:
    from patron.analytics.artefacts import current_manifest
    from patron.ingest.service import list_imports

    try:
        with runtime.warehouse(read_only=True) as warehouse:
            counts: dict[str, Any] = warehouse.counts()
    except WarehouseBusyError:
        counts = {"note": "the warehouse is being written by another process"}
    except StoreError:
        counts = {}
    runs = list_imports(runtime, limit=1)
    manifest = current_manifest(runtime.settings.artefact_dir)
    return {
        "home": str(runtime.settings.home),
        "operational_store": runtime.store.engine.url.render_as_string(hide_password=True),
        "warehouse": runtime.settings.warehouse_location,
        "counts": counts,
        "last_import": runs[0].finished_at.isoformat() if runs and runs[0].finished_at else None,
        "last_build": manifest["built_at"] if manifest else None,
        "build_as_of": manifest["as_of"] if manifest else None,
    }


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Counts per entity, last import and build times, store locations."""
    with fail_on_error():
        runtime = open_runtime()
        info = _status(runtime)
        if json_out:
            print_json(info)
            return
        table = Table(title="Patron status", show_header=False)
        for key in ("home", "operational_store", "warehouse", "last_import", "last_build", "build_as_of"):
            table.add_row(key, str(info[key]))
        for entity, count in info["counts"].items():
            table.add_row(entity, f"{count:,}" if isinstance(count, int) else str(count))
        console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the REST API (/api/v1, /openapi.json) and the web console."""
    import uvicorn

    from patron.api.app import create_app
    from patron.retention.logs import server_log_config

    with fail_on_error():
        runtime = open_runtime()
        console.print(f"Patron on http://{host}:{port}  (API docs: /api/docs)")
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="info", log_config=server_log_config())


if __name__ == "__main__":  # pragma: no cover
    app()
