"""Demo shop: generate one, or run Patron end to end on it."""

from __future__ import annotations

import getpass
import os
import secrets
from typing import Annotated

import typer
from rich.console import Console

from patron.audit.service import record
from patron.cli.common import fail_on_error, open_runtime, print_json
from patron.cli.progress import RichProgress

__all__ = ["app"]

console = Console()
app = typer.Typer(help="The demo shop.", no_args_is_help=True)
DEMO_OPERATOR = "demo"


@app.command("generate")
def generate(
    members: Annotated[int, typer.Option(min=10, max=10_000_000, help="Number of members.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 42,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate a deterministic demo shop and import it."""
    from patron.demo.generator import generate_shop
    from patron.ingest.service import import_batch

    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(Console(stderr=True), enabled=not json_out) as progress:
            summary = import_batch(
                runtime,
                "demo",
                f"demo-{members}-{seed}",
                lambda: generate_shop(members, seed, progress=progress),
                progress=progress,
            )
        record(
            runtime.store, f"cli:{getpass.getuser()}", "import.run", f"import:{summary.id}", details={"format": "demo"}
        )
        if json_out:
            print_json(summary.model_dump(mode="json"))
            return
        console.print("demo shop imported: " + ", ".join(f"{k} {v:,}" for k, v in summary.entities.items()))


def _demo_operator_password() -> str:
    """Create or reset the demo operator; return its fresh password."""
    from sqlalchemy import select

    from patron.auth.models import Operator
    from patron.auth.schemas import OperatorCreate
    from patron.auth.service import _hasher, create_operator

    runtime = open_runtime()
    password = secrets.token_urlsafe(12)
    with runtime.store.session() as sess:
        operator = sess.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR))
        if operator is not None:
            operator.password_hash = _hasher.hash(password)
            return password
    create_operator(runtime.store, OperatorCreate(username=DEMO_OPERATOR, password=password, role="admin"))
    return password


@app.command("up")
def up(
    members: Annotated[int, typer.Option(min=10, max=10_000_000, help="Members in the demo shop.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Init, generate the demo shop (once), build profiles, train recommendations, set up loyalty, serve."""
    from patron.analytics.build import build_profiles
    from patron.cli.main import init, serve
    from patron.demo.activation import seed_activation

    # The demo operator is an admin without a second factor; production keeps requiring one.
    os.environ.setdefault("PATRON_REQUIRE_ADMIN_MFA", "false")
    init()
    with fail_on_error():
        runtime = open_runtime()
        with runtime.warehouse() as warehouse:
            has_orders = warehouse.counts()["orders"] > 0
    if not has_orders:
        generate(members=members, seed=seed, json_out=False)
    with fail_on_error(), RichProgress(Console(stderr=True)) as progress:
        result = build_profiles(open_runtime(), None, progress)
    console.print(f"built {result.members_profiled:,} profiles as of {result.as_of}")
    with fail_on_error(), RichProgress(Console(stderr=True)) as progress:
        seeded = seed_activation(open_runtime(), progress)
    console.print(f"recommendations placed: {', '.join(seeded['recs']) or 'already'}; loyalty: {seeded['loyalty']}")
    password = _demo_operator_password()
    console.rule("Patron demo")
    console.print(
        f"Console: http://{host}:{port}/   user: [bold]{DEMO_OPERATOR}[/bold]   password: [bold]{password}[/bold]"
    )
    console.rule()
    serve(host=host, port=port)
