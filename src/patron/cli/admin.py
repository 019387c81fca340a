"""Operators and API keys from the command line."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json

if TYPE_CHECKING:
    from pydantic import ValidationError as PydanticError

__all__ = ["api_keys", "operators"]

console = Console()
operators = typer.Typer(help="Console and API users.", no_args_is_help=True)
api_keys = typer.Typer(help="Machine credentials with a role and scopes.", no_args_is_help=True)


def _invalid(exc: PydanticError) -> NoReturn:
    """Report the first invalid field on stderr, like every other CLI error, and exit 1."""
    first = exc.errors()[0]
    err_console.print(f"[red]error ({'.'.join(map(str, first['loc']))}):[/red] {first['msg']}")
    raise typer.Exit(1) from None


@operators.command("create")
def create(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, analyst, marketer or support.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters.")
    ],
) -> None:
    """Create an operator (argon2id-hashed password)."""
    from pydantic import ValidationError as PydanticError

    from patron.auth.schemas import OperatorCreate
    from patron.auth.service import create_operator

    with fail_on_error():
        runtime = open_runtime()
        try:
            data = OperatorCreate(username=username, password=password, role=role)
        except PydanticError as exc:
            _invalid(exc)
        created = create_operator(runtime.store, data)
        record(runtime.store, f"cli:{getpass.getuser()}", "operator.create", f"operator:{created.id}")
        console.print(f"operator [bold]{created.username}[/bold] ({created.role}) created")


@api_keys.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[str, typer.Option(help="admin, analyst, marketer or support.")],
    scope: Annotated[list[str], typer.Option(help="A permission, e.g. members:read (repeatable).")],
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO date-time.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API key; its secret is printed once."""
    from pydantic import ValidationError as PydanticError

    from patron.auth.schemas import ApiKeyCreate
    from patron.auth.service import create_api_key

    with fail_on_error():
        runtime = open_runtime()
        try:
            data = ApiKeyCreate(
                name=name,
                role=role,
                scopes=scope,
                expires_at=datetime.fromisoformat(expires) if expires else None,
            )
        except PydanticError as exc:
            _invalid(exc)
        except ValueError as exc:  # the expiry is not an ISO date-time
            err_console.print(f"[red]error (expires):[/red] {exc}")
            raise typer.Exit(1) from None
        created = create_api_key(runtime.store, data, None)
        record(runtime.store, f"cli:{getpass.getuser()}", "api_key.create", f"api_key:{created.id}")
        if json_out:
            print_json(created.model_dump(mode="json"))
            return
        console.print(f"API key {created.id} ({created.role}): [bold]{created.key}[/bold]\nIt is shown only now.")


@api_keys.command("list")
def list_keys(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every API key with its role, scopes, expiry and revocation (never the secret)."""
    from rich.table import Table

    from patron.auth.service import list_api_keys

    with fail_on_error():
        keys = list_api_keys(open_runtime().store)
        if json_out:
            print_json([k.model_dump(mode="json") for k in keys])
            return
        table = Table("id", "name", "prefix", "role", "scopes", "expires", "revoked")
        for k in keys:
            expires = k.expires_at.isoformat(timespec="seconds") if k.expires_at else "never"
            revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
            table.add_row(str(k.id), k.name, k.prefix, k.role, ", ".join(k.scopes), expires, revoked)
        console.print(table)


@api_keys.command("revoke")
def revoke_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `patron api-keys list`).")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke an API key; running servers refuse it within PATRON_API_KEY_CACHE_SECONDS (5 s by default)."""
    from patron.auth.service import revoke_api_key

    with fail_on_error():
        runtime = open_runtime()
        revoked = revoke_api_key(runtime.store, key_id)
        record(runtime.store, f"cli:{getpass.getuser()}", "api_key.revoke", f"api_key:{revoked.id}")
        if json_out:
            print_json(revoked.model_dump(mode="json"))
            return
        console.print(f"API key {revoked.id} ({revoked.name}) revoked")
