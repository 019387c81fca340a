"""Connection to the analytical warehouse through Ibis.

DuckDB (a file in the data directory) is the embedded default; a
``postgresql://`` URL points the same Ibis expressions at PostgreSQL. DuckDB
allows one writing process per file: writers take an advisory lock file first
so that a second writer is refused with a clear message instead of waiting on
an opaque engine error.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import ibis
import pyarrow as pa
from ibis.backends.duckdb import Backend as DuckDBBackend

from patron.errors import StoreError, WarehouseBusyError
from patron.warehouse.schema import NATURAL_KEYS, TABLES

__all__ = ["Warehouse", "connect_duckdb", "duckdb_config"]

log = logging.getLogger(__name__)


def connect_duckdb(path: str = ":memory:", *, read_only: bool = False) -> Any:
    """An Ibis DuckDB connection with Patron's settings (no downloads, no progress bar)."""
    con = ibis.duckdb.connect(path, read_only=read_only, **duckdb_config())
    con.con.execute("SET enable_progress_bar = false")
    return con


def duckdb_config() -> dict[str, Any]:
    """DuckDB settings: no extension downloads, fail fast if one is missing."""
    return {"autoinstall_known_extensions": False, "autoload_known_extensions": True}


class Warehouse:
    """The warehouse behind an Ibis backend."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self._lock_handle: IO[str] | None = None
        if url.startswith("duckdb://"):
            self.path: Path | None = Path(url.removeprefix("duckdb:///").removeprefix("duckdb://"))
            self.kind = "duckdb"
        elif url.startswith(("postgresql://", "postgres://")):
            self.path = None
            self.kind = "postgres"
        else:
            raise StoreError(f"unsupported warehouse URL scheme: {url.split(':', 1)[0]}")
        self.con = self._connect()

    def _connect(self) -> Any:
        if self.kind == "duckdb":
            assert self.path is not None
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._acquire_lock()
            elif not self.path.exists():
                raise StoreError("the warehouse does not exist yet: run `patron init`")
            try:
                return connect_duckdb(str(self.path), read_only=self.read_only)
            except Exception as exc:  # duckdb.IOException: file locked by another process
                self._release_lock()
                if "lock" in str(exc).lower():
                    raise WarehouseBusyError(
                        "the warehouse is in use by another Patron process (an import or build); wait for it to finish"
                    ) from exc
                raise StoreError(f"cannot open the warehouse: {exc}") from exc
        return ibis.connect(self.url)

    def _acquire_lock(self) -> None:
        assert self.path is not None
        lock_path = self.path.with_suffix(".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the connection's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise WarehouseBusyError(
                f"the warehouse is being written by another Patron process ({holder}); wait for it to finish"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def close(self) -> None:
        try:
            self.con.disconnect()
        finally:
            self._release_lock()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the warehouse tables that do not exist yet (idempotent)."""
        existing = set(self.con.list_tables())
        for name, schema in TABLES.items():
            if name not in existing:
                self.con.create_table(name, schema=schema)

    def is_initialised(self) -> bool:
        return set(TABLES) <= set(self.con.list_tables())

    def table(self, name: str) -> ibis.Table:
        return self.con.table(name)

    def counts(self) -> dict[str, int]:
        """Rows per table; a table this (older, read-only) warehouse lacks counts 0."""
        present = set(self.con.list_tables())
        return {
            name: int(self.table(name).count().execute()) if name in present else 0
            for name in TABLES
            if name != "member_order"
        }

    # -- writes ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes on DuckDB; statement-level on PostgreSQL."""
        if isinstance(self.con, DuckDBBackend):
            raw = self.con.con
            raw.begin()
            try:
                yield
            except BaseException:
                raw.rollback()
                raise
            raw.commit()
        else:
            yield

    def _stage(self, name: str, rows: pa.Table) -> ibis.Table:
        # DuckDB scans the Arrow table in place; other engines get a temp table.
        if isinstance(self.con, DuckDBBackend):
            self.con.con.register(name, rows)
            return self.con.table(name)
        return self.con.create_table(name, rows, temp=True, overwrite=True)

    def _unstage(self, name: str) -> None:
        if isinstance(self.con, DuckDBBackend):
            self.con.con.unregister(name)
        else:
            self.con.drop_table(name, force=True)

    def insert_new(self, name: str, rows: pa.Table) -> int:
        """Insert the rows whose natural key is not in the table yet; return how many."""
        if rows.num_rows == 0:
            return 0
        schema = TABLES[name]
        rows = rows.select(list(schema.names)).cast(schema.to_pyarrow())
        stage_name = f"_stage_{name}"
        stage = self._stage(stage_name, rows)
        try:
            target = self.table(name)
            before = int(target.count().execute())
            self.con.insert(name, stage.anti_join(target, list(NATURAL_KEYS[name])))
            return int(target.count().execute()) - before
        finally:
            self._unstage(stage_name)

    def replace(self, name: str, rows: pa.Table) -> None:
        """Replace a derived table's content entirely."""
        schema = TABLES[name]
        rows = rows.select(list(schema.names)).cast(schema.to_pyarrow())
        self.con.truncate_table(name)
        stage_name = f"_stage_{name}"
        stage = self._stage(stage_name, rows)
        try:
            self.con.insert(name, stage)
        finally:
            self._unstage(stage_name)
