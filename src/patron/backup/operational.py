"""The operational store as JSON lines, one file per table, read in one snapshot.

The dump goes through SQLAlchemy Core, so a backup taken on SQLite restores
into PostgreSQL and the other way round. All tables are read in a single
read-only transaction (REPEATABLE READ on PostgreSQL; one read transaction in
SQLite's WAL mode), so the dump is one consistent state of the store.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Table, select, text
from sqlalchemy.sql.sqltypes import JSON, Date, DateTime, LargeBinary, Numeric

import patron.db.models  # noqa: F401  (registers every table)
from patron.db.base import Base
from patron.db.engine import OperationalStore

__all__ = ["dump_tables", "load_tables", "store_is_empty", "tables"]

_BATCH = 1000
# Rows that hold no user data (the migrations' seeds, the system keys made on first use); restoring replaces them.
_SEEDED = {"audit_chain_head", "system_keys"}


def tables() -> list[Table]:
    """Every operational table, parents before children."""
    return list(Base.metadata.sorted_tables)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(table: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, DateTime):
            out[column.name] = datetime.fromisoformat
        elif isinstance(kind, Date):
            out[column.name] = date.fromisoformat
        elif isinstance(kind, LargeBinary):
            out[column.name] = base64.b64decode
        elif isinstance(kind, Numeric) and kind.asdecimal:
            out[column.name] = Decimal
        elif isinstance(kind, JSON):
            out[column.name] = None
    return out


def _rows(conn: Connection, table: Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(select(table).order_by(*order))
    for row in result.mappings():
        yield {key: _encode(value) for key, value in row.items()}


def dump_tables(store: OperationalStore, directory: Path) -> dict[str, int]:
    """Write ``<table>.jsonl`` per table into ``directory``; returns rows per table."""
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with store.engine.connect() as conn, conn.begin():
        if store.dialect == "postgresql":  # the transaction's first statement: it has taken no snapshot yet
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        for table in tables():
            n = 0
            with (directory / f"{table.name}.jsonl").open("w", encoding="utf-8") as handle:
                for row in _rows(conn, table):
                    handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                    n += 1
            counts[table.name] = n
    (directory / "_revision").write_text(str(revision), encoding="utf-8")
    return counts


def store_is_empty(store: OperationalStore) -> list[str]:
    """Names of the tables that hold rows (the migrations' own seed rows aside)."""
    busy = []
    with store.engine.connect() as conn:
        for table in tables():
            if table.name in _SEEDED:
                continue
            if conn.execute(select(table).limit(1)).first() is not None:
                busy.append(table.name)
    return busy


def _read(handle: IO[str], decode: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for line in handle:
        row: dict[str, Any] = json.loads(line)
        for name, convert in decode.items():
            value = row.get(name)
            if convert is not None and value is not None:
                row[name] = convert(value)
        yield row


def load_tables(store: OperationalStore, directory: Path) -> dict[str, int]:
    """Insert every table's rows in one transaction (all or nothing); returns rows per table."""
    counts: dict[str, int] = {}
    with store.engine.begin() as conn:
        for table in tables():
            path = directory / f"{table.name}.jsonl"
            if table.name in _SEEDED:
                conn.execute(table.delete())
            if not path.exists():
                counts[table.name] = 0
                continue
            decode = _decoder(table)
            n = 0
            batch: list[dict[str, Any]] = []
            with path.open(encoding="utf-8") as handle:
                for row in _read(handle, decode):
                    batch.append(row)
                    if len(batch) >= _BATCH:
                        conn.execute(table.insert(), batch)
                        n += len(batch)
                        batch = []
            if batch:
                conn.execute(table.insert(), batch)
                n += len(batch)
            counts[table.name] = n
        if store.dialect == "postgresql":
            _reset_sequences(conn)
    return counts


def _reset_sequences(conn: Connection) -> None:
    """Move each serial key's sequence past the restored rows."""
    for table in tables():
        for column in table.primary_key.columns:
            if column.autoincrement is True or (column.autoincrement == "auto" and column.type.python_type is int):
                seq = conn.execute(
                    text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
                ).scalar()
                if seq:
                    highest = f'SELECT MAX("{column.name}") FROM "{table.name}"'  # noqa: S608 - names from the metadata
                    conn.execute(text(f"SELECT setval(:s, COALESCE(({highest}), 0) + 1, false)"), {"s": seq})
