"""Running an import: parse, resolve members, persist, reconcile."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, insert, select

from patron.db.base import utcnow
from patron.errors import ImportFormatError, NotFoundError, PatronError, ValidationError
from patron.ingest.contract import Entity, ParsedBatch
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.ingest.registry import importer_for
from patron.ingest.schemas import ImportRead, QuarantinePage, QuarantineRead
from patron.ingest.source import admit_source
from patron.members.identity import resolve_member_keys, source_order
from patron.members.vault import PERSONAL_FIELDS
from patron.members.vault_store import write_personal
from patron.privacy.erasure import erased_source_ids
from patron.progress import NullProgress, Progress
from patron.runtime import Runtime
from patron.warehouse.schema import NATURAL_KEYS, TABLES

__all__ = ["import_batch", "list_imports", "quarantine_page", "run_import"]

log = logging.getLogger(__name__)

_ENTITY_ORDER: tuple[Entity, ...] = ("members", "products", "orders", "order_lines", "events", "inventory")
_CHUNK = 20_000
_RAW_CHARS = 4_096


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_import(
    runtime: Runtime,
    fmt: str,
    path: Path,
    *,
    mapping: dict[str, Any] | None = None,
    progress: Progress = NullProgress(),  # noqa: B008
) -> ImportRead:
    """Import one file; return its reconciliation.

    The file is admitted first (``ingest.source``: inside the import directory, a regular file, within the size
    limit, UTF-8 text); a refusal is recorded as a failed run, before anything of the file is hashed or parsed.
    """
    importer_cls = importer_for(fmt)
    runtime.store.require_initialised()
    progress.stage("check file", None)
    try:
        source: Path | PatronError = admit_source(path, runtime.settings)
    except (ImportFormatError, ValidationError) as refused:
        source = refused

    def produce() -> ParsedBatch:
        if isinstance(source, PatronError):
            raise source
        return importer_cls(source, mapping).parse(progress)

    sha = _sha256(source) if isinstance(source, Path) else ""
    return import_batch(runtime, fmt, path.name, produce, sha256=sha, progress=progress)


def import_batch(
    runtime: Runtime,
    fmt: str,
    source_name: str,
    produce: Callable[[], ParsedBatch],
    *,
    sha256: str = "",
    progress: Progress = NullProgress(),  # noqa: B008
) -> ImportRead:
    """Record a run, persist what ``produce`` returns, reconcile.

    Warehouse writes happen in one transaction: a failure leaves the warehouse
    as it was and the run marked ``failed`` with the error.
    """
    runtime.store.require_initialised()
    with runtime.store.session() as sess:
        run = ImportRun(format=fmt, source_name=source_name, sha256=sha256)
        sess.add(run)
        sess.flush()
        run_id = run.id
    try:
        batch = produce()
        inserted = _persist(runtime, batch, progress)
        _record(runtime, run_id, batch, inserted, progress)
    except Exception as exc:
        with runtime.store.session() as sess:
            failed = sess.get_one(ImportRun, run_id)
            failed.status, failed.error, failed.finished_at = "failed", _storable(str(exc))[:4000], utcnow()
        raise
    with runtime.store.session() as sess:
        return ImportRead.model_validate(sess.get_one(ImportRun, run_id))


def _persist(runtime: Runtime, batch: ParsedBatch, progress: Progress) -> dict[str, int]:
    progress.stage("resolve members", None)
    frames = _with_member_keys(runtime, batch)
    with runtime.warehouse() as warehouse:
        warehouse.ensure_schema()
        progress.stage("write warehouse", len(_ENTITY_ORDER) + 1)
        inserted: dict[str, int] = {}
        with warehouse.transaction():
            for entity in _ENTITY_ORDER:
                frame = frames.get(entity)
                if frame is not None:
                    # A key repeated within the batch counts once (then as a duplicate), never twice.
                    unique = frame.unique(subset=list(NATURAL_KEYS[entity]), keep="first", maintain_order=True)
                    inserted[entity] = warehouse.insert_new(entity, _conform(entity, unique).to_arrow())
                progress.advance()
            warehouse.replace("member_order", source_order(runtime.store).to_arrow())
            progress.advance()
    return inserted


def _member_ids(batch: ParsedBatch) -> pl.Series:
    parts = []
    if batch.members is not None:
        parts.append(batch.members["source_id"].unique())
    for entity in ("orders", "events"):
        frame = batch.frame(entity)
        if frame is not None and "member_source_id" in frame.columns:
            parts.append(frame["member_source_id"].unique())
    if not parts:
        return pl.Series("member_source_id", [], dtype=pl.String)
    return pl.concat([p.cast(pl.String).rename("member_source_id") for p in parts]).unique()


def _with_member_keys(runtime: Runtime, batch: ParsedBatch) -> dict[Entity, pl.DataFrame]:
    """Swap source member ids for member keys; send personal fields to the vault (erased customers left out)."""
    frames, ids = _without_erased(runtime, batch)
    lookup = resolve_member_keys(runtime.store, batch.source, ids)
    out: dict[Entity, pl.DataFrame] = {}
    for entity, frame in frames.items():
        if entity == "members":
            frame = frame.rename({"source_id": "member_source_id"}).join(lookup, on="member_source_id", how="left")
            _write_vault(runtime, frame)
        elif "member_source_id" in frame.columns:
            frame = frame.join(lookup, on="member_source_id", how="left", maintain_order="left")
        if "source" not in frame.columns and entity in ("members", "products", "orders", "events"):
            frame = frame.with_columns(pl.lit(batch.source).alias("source"))
        out[entity] = frame
    return out


def _without_erased(runtime: Runtime, batch: ParsedBatch) -> tuple[dict[Entity, pl.DataFrame], pl.Series]:
    """The batch's frames and member ids without the rows of customers who were erased.

    An erased customer is never re-created by a later import of the shop's files: their member rows, orders
    (with those orders' lines) and events are left out, and their count per entity goes into the run's notes,
    never the ids.
    """
    ids = _member_ids(batch)
    frames = {entity: frame for entity in _ENTITY_ORDER if (frame := batch.frame(entity)) is not None}
    erased = sorted(erased_source_ids(runtime, batch.source, ids.to_list())) if len(ids) else []
    if not erased:
        return frames, ids
    skipped: dict[str, int] = {}
    dropped_orders: list[str] = []
    for entity, frame in frames.items():
        column = "source_id" if entity == "members" else "member_source_id"
        gone = pl.lit(False)
        if column in frame.columns:
            gone = pl.col(column).cast(pl.String).is_in(erased).fill_null(False)
        if entity == "order_lines" and dropped_orders and "order_key" in frame.columns:
            gone = gone | pl.col("order_key").is_in(dropped_orders).fill_null(False)
        if entity == "orders" and "order_key" in frame.columns:
            dropped_orders = frame.filter(gone)["order_key"].to_list()
        kept = frame.filter(~gone)
        if kept.height < frame.height:
            skipped[entity] = frame.height - kept.height
        frames[entity] = kept
    if skipped:
        batch.notes["rows_of_erased_members"] = skipped
    return frames, ids.filter(~ids.is_in(erased))


def _write_vault(runtime: Runtime, members: pl.DataFrame) -> None:
    personal = [c for c in PERSONAL_FIELDS if c in members.columns]
    if not personal:
        return
    rows = members.select("member_key", *personal).filter(pl.any_horizontal(pl.col(personal).is_not_null()))
    records = [(row["member_key"], {c: row[c] for c in personal}) for row in rows.iter_rows(named=True)]
    write_personal(runtime.store, runtime.cipher, records)


def _conform(entity: Entity, frame: pl.DataFrame) -> pl.DataFrame:
    """Keep the warehouse columns, adding absent optional ones as nulls."""
    schema = TABLES[entity]
    missing = [pl.lit(None).alias(name) for name in schema.names if name not in frame.columns]
    return frame.with_columns(missing).select(list(schema.names))


def _record(runtime: Runtime, run_id: int, batch: ParsedBatch, inserted: dict[str, int], progress: Progress) -> None:
    progress.stage("record quarantine", batch.quarantine.height or None)
    primary = batch.frame(batch.primary)
    accepted = 0 if primary is None else primary.height
    imported = inserted.get(batch.primary, 0)
    with runtime.store.session() as sess:
        rows = batch.quarantine.with_columns(
            pl.lit(run_id).alias("run_id"),
            _storable_text("field").str.slice(0, 256),
            _storable_text("reason").str.slice(0, 512),
            _storable_text("raw").str.slice(0, _RAW_CHARS),  # enough to find the row; a 10 MB value is not kept
        ).to_dicts()
        for start in range(0, len(rows), _CHUNK):
            sess.connection().execute(insert(QuarantinedRow), rows[start : start + _CHUNK])
            progress.advance(len(rows[start : start + _CHUNK]))
        run = sess.get_one(ImportRun, run_id)
        run.rows_read = batch.rows_read
        run.rows_imported = imported
        run.rows_duplicate = accepted - imported - batch.notes.get("rows_of_erased_members", {}).get(batch.primary, 0)
        run.rows_quarantined = batch.quarantine.height
        run.entities = inserted
        run.notes = batch.notes
        run.status = "completed"
        run.finished_at = utcnow()
    log.info(
        "import finished",
        extra={"run_id": run_id, "rows_read": batch.rows_read, "imported": imported, "source": batch.source},
    )


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL cannot store in a text column."""
    return text.replace("\x00", "\ufffd")


def _storable_text(column: str) -> pl.Expr:
    return pl.col(column).str.replace_all("\x00", "\ufffd", literal=True)


def list_imports(runtime: Runtime, limit: int = 50) -> list[ImportRead]:
    with runtime.store.session() as sess:
        runs = sess.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return [ImportRead.model_validate(run) for run in runs]


def quarantine_page(runtime: Runtime, run_id: int, page: int = 1, page_size: int = 50) -> QuarantinePage:
    with runtime.store.session() as sess:
        if sess.get(ImportRun, run_id) is None:
            raise NotFoundError(f"import run {run_id} does not exist")
        total = sess.scalar(select(func.count()).where(QuarantinedRow.run_id == run_id)) or 0
        rows = sess.scalars(
            select(QuarantinedRow)
            .where(QuarantinedRow.run_id == run_id)
            .order_by(QuarantinedRow.row_number)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        items = [QuarantineRead.model_validate(r) for r in rows]
    return QuarantinePage(items=items, total=total, page=page, page_size=page_size)
