"""Build artefacts: what serving reads instead of scanning the warehouse.

A build writes Parquet files into ``artefacts/build-<id>/`` and then points
``artefacts/current.json`` at it with an atomic rename, so readers always see
one complete build. Readers query the files through an in-memory DuckDB, so
the server never holds the warehouse file (an import can run meanwhile).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis

from patron.errors import NotFoundError
from patron.warehouse.store import connect_duckdb

__all__ = ["ARTEFACT_TABLES", "BuildReader", "current_manifest", "publish", "reader_for"]

ARTEFACT_TABLES = ("profiles", "orders", "events")
_POINTER = "current.json"
_local = threading.local()
_open_readers: dict[int, BuildReader] = {}  # every thread's cached reader, closed at exit


def publish(artefact_root: Path, build_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest and make ``build_dir`` the current build atomically."""
    (build_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    tmp = artefact_root / f".{_POINTER}.{os.getpid()}"
    tmp.write_text(json.dumps({"build_dir": build_dir.name}))
    os.replace(tmp, artefact_root / _POINTER)


def current_manifest(artefact_root: Path) -> dict[str, Any] | None:
    """The manifest of the current build, or None if nothing was built yet."""
    pointer = artefact_root / _POINTER
    if not pointer.exists():
        return None
    build_dir = artefact_root / json.loads(pointer.read_text())["build_dir"]
    manifest: dict[str, Any] = json.loads((build_dir / "manifest.json").read_text())
    manifest["path"] = str(build_dir)
    return manifest


@dataclass
class BuildReader:
    """Ibis tables over one build's Parquet artefacts."""

    manifest: dict[str, Any]
    con: Any

    def table(self, name: str) -> ibis.Table:
        return self.con.table(name)

    @property
    def build_id(self) -> int:
        return int(self.manifest["build_id"])


def _open(manifest: dict[str, Any]) -> BuildReader:
    con = connect_duckdb()
    for name in ARTEFACT_TABLES:
        con.read_parquet(Path(manifest["path"]) / f"{name}.parquet", table_name=name)
    return BuildReader(manifest=manifest, con=con)


def reader_for(artefact_root: Path) -> BuildReader:
    """A reader of the current build, cached per thread until a new build lands."""
    manifest = current_manifest(artefact_root)
    if manifest is None:
        raise NotFoundError("no profiles built yet: run `patron build`")
    cached: BuildReader | None = getattr(_local, "reader", None)
    if cached is not None and cached.manifest["path"] == manifest["path"]:
        return cached
    if cached is not None:
        cached.con.disconnect()
        _open_readers.pop(id(cached), None)
    reader = _open(manifest)
    _local.reader = reader
    _open_readers[id(reader)] = reader
    return reader


@atexit.register
def _close_readers() -> None:
    """Disconnect the readers cached in worker threads before exit; DuckDB aborts the process otherwise."""
    for reader in list(_open_readers.values()):
        reader.con.disconnect()
