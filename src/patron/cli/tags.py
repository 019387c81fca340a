"""`patron tags`: define rule tags and see who carries them."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json

if TYPE_CHECKING:
    from patron.analytics.artefacts import BuildReader
    from patron.runtime import Runtime

__all__ = ["app"]

app = typer.Typer(help="Rule tags: conditions over profile fields that tag members.", no_args_is_help=True)
console = Console()
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _reader_or_none(runtime: Runtime) -> BuildReader | None:
    from patron.analytics.artefacts import reader_for
    from patron.errors import NotFoundError

    try:
        return reader_for(runtime.settings.artefact_dir)
    except NotFoundError:
        return None


@app.command("list")
def list_command(json_out: JsonOut = False) -> None:
    """Every tag, its rule and how many members carry it in the current build."""
    from patron.tags.service import list_tags

    with fail_on_error():
        runtime = open_runtime()
        tags = list_tags(runtime.store, _reader_or_none(runtime))
        if json_out:
            print_json([t.model_dump(mode="json") for t in tags])
            return
        table = Table("name", "members", "rule", "description", title="Rule tags")
        for t in tags:
            table.add_row(t.name, "-" if t.members is None else f"{t.members:,}", t.rule, t.description)
        console.print(table)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique tag name.")],
    rule: Annotated[str, typer.Argument(help="The rule, e.g. 'segment = \"champions\" and monetary > 1000'.")],
    description: Annotated[str, typer.Option("--description", "-d", help="What the tag is for.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Define a tag; a rule that cannot be read is refused with the position of the problem."""
    from patron.tags.schemas import TagCreate
    from patron.tags.service import create_tag, get_tag

    with fail_on_error():
        runtime = open_runtime()
        created = create_tag(runtime.store, TagCreate(name=name, rule=rule, description=description), _actor())
        record(runtime.store, _actor(), "tag.create", f"tag:{created.id}")
        tag = get_tag(runtime.store, created.name, _reader_or_none(runtime))
        if json_out:
            print_json(tag.model_dump(mode="json"))
            return
        members = "" if tag.members is None else f" ({tag.members:,} members now)"
        console.print(f"tag [bold]{tag.name}[/bold]: {tag.rule}{members}")


@app.command("check")
def check(
    rule: Annotated[str, typer.Argument(help="The rule to check.")],
    json_out: JsonOut = False,
) -> None:
    """Check a rule without saving it; exit code 1 when it has problems."""
    from patron.tags.service import check_rule

    result = check_rule(rule)
    if json_out:
        print_json(result.model_dump(mode="json"))
    elif result.valid:
        console.print(f"valid: {result.canonical}")
    else:
        for problem in result.problems:
            err_console.print(f"{rule}\n{' ' * problem.position}^ {problem.message}")
    if not result.valid:
        raise typer.Exit(1)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The tag to delete.")]) -> None:
    """Delete a tag (members simply stop carrying it)."""
    from patron.tags.service import delete_tag

    with fail_on_error():
        runtime = open_runtime()
        delete_tag(runtime.store, name)
        record(runtime.store, _actor(), "tag.delete", f"tag:{name}")
        console.print(f"deleted tag {name}")
