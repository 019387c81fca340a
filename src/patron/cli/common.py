"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from patron.errors import PatronError, StoreError
from patron.runtime import Runtime
from patron.settings import get_settings

__all__ = ["close_runtimes", "err_console", "fail_on_error", "open_runtime", "print_json"]

err_console = Console(stderr=True)
_opened: list[Runtime] = []


def open_runtime(*, require_init: bool = True) -> Runtime:
    """A runtime from the environment; closed by ``close_runtimes`` when the command ends."""
    runtime = Runtime(get_settings())
    _opened.append(runtime)
    if require_init:
        settings = runtime.settings
        if settings.database_url is None and not settings.home.exists():
            raise StoreError(f"there is no data directory at {settings.home}: run `patron init`")
        try:
            runtime.store.require_initialised()
        except OperationalError as exc:
            raise StoreError(f"cannot open the operational store: {exc.orig}") from None
    return runtime


def close_runtimes() -> None:
    """Release the store connections of every runtime the command opened."""
    while _opened:
        _opened.pop().close()


@contextmanager
def fail_on_error() -> Iterator[None]:
    """Turn Patron errors into a one-line message and exit code 1."""
    try:
        yield
    except PatronError as exc:
        field = getattr(exc, "field", None)
        where = f" ({field})" if field else ""
        err_console.print(f"[red]error{where}:[/red] {exc}")
        raise typer.Exit(1) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, ensure_ascii=False) + "\n")
