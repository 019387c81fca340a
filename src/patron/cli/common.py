"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from patron.errors import PatronError
from patron.runtime import Runtime
from patron.settings import get_settings

__all__ = ["err_console", "fail_on_error", "open_runtime", "print_json"]

err_console = Console(stderr=True)


def open_runtime(*, require_init: bool = True) -> Runtime:
    runtime = Runtime(get_settings())
    if require_init:
        runtime.store.require_initialised()
    return runtime


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
