"""Import paths: inside PATRON_IMPORT_DIR when set (no ``..``, absolute path or symlink out); regular files only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patron.cli.main import app as cli
from patron.errors import ValidationError
from patron.ingest.service import list_imports, run_import
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY
from tests.conftest import PG_URL

MAPPING = {"entity": "members", "columns": {"member_id": "id"}}
CSV = "id\n1\n2\n"


@pytest.fixture
def confined(runtime: Runtime, tmp_path: Path) -> Iterator[tuple[Runtime, Path, Path]]:
    """A runtime importing only from ``inbox``; ``outside`` is a sibling directory with a readable file."""
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text(CSV)
    (inbox / "members.csv").write_text(CSV)
    rt = Runtime(runtime.settings.model_copy(update={"import_dir": inbox}))
    yield rt, inbox, outside
    rt.close()


def _refused(rt: Runtime, path: Path, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        run_import(rt, "generic", path, mapping=MAPPING)
    assert caught.value.field == "path"
    run = list_imports(rt, limit=1)[0]
    assert run.status == "failed" and reason.split()[0] in (run.error or "")
    assert run.sha256 == ""  # the file was not even read
    assert run.rows_read == 0


@pytest.mark.parametrize(
    "relative",
    ["../outside/secret.csv", "sub/../../outside/secret.csv", "./../outside/./secret.csv"],
)
def test_dot_dot_out_of_the_import_directory_is_refused(relative: str, confined: tuple[Runtime, Path, Path]) -> None:
    rt, inbox, _outside = confined
    (inbox / "sub").mkdir()

    _refused(rt, Path(relative), "outside the import directory")


def test_an_absolute_path_outside_is_refused(confined: tuple[Runtime, Path, Path]) -> None:
    rt, _inbox, outside = confined

    _refused(rt, outside / "secret.csv", "outside the import directory")
    _refused(rt, Path("/etc/passwd"), "outside the import directory")


def test_symlinks_out_of_the_directory_are_refused(confined: tuple[Runtime, Path, Path]) -> None:
    rt, inbox, outside = confined
    (inbox / "link.csv").symlink_to(outside / "secret.csv")
    (inbox / "linked-dir").symlink_to(outside, target_is_directory=True)

    _refused(rt, Path("link.csv"), "outside the import directory")
    _refused(rt, Path("linked-dir/secret.csv"), "outside the import directory")


def test_files_inside_are_imported_by_relative_or_absolute_path(confined: tuple[Runtime, Path, Path]) -> None:
    rt, inbox, _outside = confined
    (inbox / "sub").mkdir()
    (inbox / "sub" / "more.csv").write_text("id\n3\n")
    (inbox / "alias.csv").symlink_to(inbox / "sub" / "more.csv")

    relative = run_import(rt, "generic", Path("members.csv"), mapping=MAPPING)
    dotted = run_import(rt, "generic", Path("sub/../sub/more.csv"), mapping=MAPPING)
    absolute = run_import(rt, "generic", inbox / "members.csv", mapping=MAPPING)
    linked = run_import(rt, "generic", Path("alias.csv"), mapping=MAPPING)

    assert (relative.rows_imported, dotted.rows_imported) == (2, 1)
    assert (absolute.rows_duplicate, linked.rows_duplicate) == (2, 1)
    assert relative.sha256 and relative.status == "completed"


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_only_regular_files_are_read_even_without_an_import_directory(
    kind: str, runtime: Runtime, tmp_path: Path
) -> None:
    target = {"directory": tmp_path / "folder.csv", "fifo": tmp_path / "pipe.csv", "device": Path("/dev/zero")}[kind]
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)  # reading it would block the import forever

    with pytest.raises(ValidationError, match="not a regular file") as caught:
        run_import(runtime, "generic", target, mapping=MAPPING)

    assert caught.value.field == "path"


def test_the_cli_names_the_path_it_refuses(confined: tuple[Runtime, Path, Path], tmp_path: Path) -> None:
    rt, inbox, _outside = confined
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"entity": "members", "columns": {"member_id": "id"}}')
    env = {
        "PATRON_HOME": str(rt.settings.home),
        "PATRON_ENV": "development",
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_IMPORT_DIR": str(inbox),
    }
    runner = CliRunner()

    refused = runner.invoke(cli, ["import", "generic", "../outside/secret.csv", "--mapping", str(mapping)], env=env)
    allowed = runner.invoke(cli, ["import", "generic", "members.csv", "--mapping", str(mapping), "--json"], env=env)

    assert refused.exit_code == 1
    assert "error (path):" in refused.stderr and "outside the import directory" in " ".join(refused.stderr.split())
    assert allowed.exit_code == 0, allowed.output
