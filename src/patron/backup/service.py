"""`patron backup` and `patron restore`: both stores and the built artefacts in one archive.

An archive is a gzip'd tar holding ``manifest.json`` (format, Patron version,
schema revision, time, row counts, a SHA-256 per file, the id (fingerprint) of
the active master key and the ids of every master key something in the
archive is wrapped under), ``operational/<table>.jsonl``,
``warehouse/<table>.parquet`` and ``artefacts/``. No master key is ever
written into a backup: keep the keyring apart (a stolen archive then yields
only ciphertext, wrapped keys and hashes); restoring needs every master key
the archive names in the keyring, and refuses otherwise. After a rotation,
older archives still restore as long as their master key is kept (offline)
and put back in the keyring for the restore.

Consistency: the backup holds the warehouse's writer lock from start to end,
so no import or build runs meanwhile (they are the only writers of the
warehouse, of import runs and of builds); the operational store is read in one
snapshot transaction.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from patron import __version__
from patron.backup.operational import dump_tables, load_tables, store_is_empty
from patron.errors import ConflictError, ValidationError
from patron.keys.master import key_id
from patron.progress import NullProgress, Progress
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES

__all__ = ["FORMAT", "BackupManifest", "backup", "key_fingerprint", "restore"]

FORMAT = 1


@dataclass
class BackupManifest:
    """What an archive holds."""

    format: int
    patron_version: str
    created_at: str
    revision: str
    key_fingerprint: str
    operational: dict[str, int] = field(default_factory=dict)
    warehouse: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    # Master keys the archive's wrapped keys need (absent from archives of older versions: key_fingerprint).
    key_fingerprints: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def needed_keys(self) -> list[str]:
        return self.key_fingerprints or [self.key_fingerprint]


def key_fingerprint(master: bytes) -> str:
    """Identifies the master key without revealing it (its key id, see patron.keys)."""
    return key_id(master)


def _wrapping_keys(operational: Path, active: str) -> list[str]:
    """Ids of the master keys the dumped key tables are wrapped under (the active one if there are no system keys)."""
    found: set[str] = set()
    for name in ("system_keys", "member_data_keys"):
        path = operational / f"{name}.jsonl"
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                found.update(json.loads(line)["master_key_id"] for line in handle)
        if name == "system_keys" and not found:
            found.add(active)  # older data whose keys are still derived from the active key
    return sorted(found)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(runtime: Runtime, target: Path, progress: Progress | None = None) -> tuple[Path, BackupManifest]:
    """Write an archive to ``target`` (a file, or a directory to put a dated file in)."""
    progress = progress or NullProgress()
    runtime.store.require_initialised()
    if target.is_dir():
        target = target / f"patron-backup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="patron-backup-") as tmp:
        stage = Path(tmp) / "backup"
        warehouse = runtime.warehouse()  # the writer lock: no import or build meanwhile
        try:
            progress.stage("Warehouse tables", total=len(TABLES))
            counts_wh: dict[str, int] = {}
            (stage / "warehouse").mkdir(parents=True)
            present = set(warehouse.con.list_tables())
            for name in TABLES:
                if name not in present:
                    continue
                counts_wh[name] = _dump_warehouse_table(warehouse, name, stage / "warehouse" / f"{name}.parquet")
                progress.advance()
            progress.stage("Operational store")
            counts_op = dump_tables(runtime.store, stage / "operational")
            artefacts = runtime.settings.artefact_dir
            if artefacts.exists():
                progress.stage("Artefacts")
                shutil.copytree(artefacts, stage / "artefacts", ignore=shutil.ignore_patterns("*.lock"))
        finally:
            warehouse.close()
        revision = (stage / "operational" / "_revision").read_text(encoding="utf-8").strip()
        active = runtime.keyring.active().id
        files = {str(p.relative_to(stage)): _sha256(p) for p in sorted(stage.rglob("*")) if p.is_file()}
        manifest = BackupManifest(
            FORMAT,
            __version__,
            datetime.now(UTC).isoformat(),
            revision,
            active,
            counts_op,
            counts_wh,
            files,
            _wrapping_keys(stage / "operational", active),
        )
        (stage / "manifest.json").write_text(json.dumps(manifest.as_dict(), indent=2, sort_keys=True), "utf-8")
        progress.stage("Writing the archive")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(stage, arcname="backup")
        partial.replace(target)
    return target, manifest


def _dump_warehouse_table(warehouse: Any, name: str, path: Path) -> int:
    expr = warehouse.table(name)
    schema = TABLES[name].to_pyarrow()
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in expr.select(*schema.names).to_pyarrow_batches(chunk_size=100_000):
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    return rows


def _extract(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")  # refuses absolute paths, "..", links out and devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValidationError(f"{archive.name} is not a readable Patron backup: {exc}", "archive") from exc
    root = into / "backup"
    if not (root / "manifest.json").is_file():
        raise ValidationError(f"{archive.name} holds no manifest.json: not a Patron backup", "archive")
    return root


def _verified(root: Path) -> BackupManifest:
    raw = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT:
        raise ValidationError(f"backup format {raw.get('format')!r} is not supported (expected {FORMAT})", "archive")
    manifest = BackupManifest(**raw)
    listed = set(manifest.files)
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    if listed != present:
        odd = sorted(listed ^ present)[:3]
        raise ValidationError(f"the archive's files do not match its manifest: {', '.join(odd)}", "archive")
    for name, digest in manifest.files.items():
        if _sha256(root / name) != digest:
            raise ValidationError(f"{name} is damaged: its checksum does not match the manifest", "archive")
    return manifest


def restore(runtime: Runtime, archive: Path, progress: Progress | None = None) -> BackupManifest:
    """Restore an archive into this runtime's data directory, whose stores must be empty.

    Everything is checked before anything is written: the archive's checksums,
    that the keyring holds every master key the archive needs, and that both
    stores and the artefact directory are empty.
    """
    progress = progress or NullProgress()
    with tempfile.TemporaryDirectory(prefix="patron-restore-") as tmp:
        progress.stage("Checking the archive")
        root = _extract(archive, Path(tmp))
        manifest = _verified(root)
        missing = [kid for kid in manifest.needed_keys() if not runtime.keyring.has(kid)]
        if missing:
            raise ValidationError(
                f"the backup was made under another master key ({', '.join(missing)}, not in the keyring): "
                "restore with the key it was made with",
                "master_key",
            )
        store = runtime.store
        store.migrate(manifest.revision)
        busy = store_is_empty(store)
        if busy:
            raise ConflictError(f"the operational store is not empty ({', '.join(busy[:5])}): restore into a new one")
        artefacts = runtime.settings.artefact_dir
        if artefacts.exists() and any(artefacts.iterdir()):
            raise ConflictError("the artefact directory is not empty: restore into a new data directory")
        warehouse = runtime.warehouse()
        try:
            warehouse.ensure_schema()
            filled = [name for name, n in warehouse.counts().items() if n]
            if filled:
                raise ConflictError(f"the warehouse is not empty ({', '.join(filled)}): restore into a new one")
            progress.stage("Operational store")
            load_tables(store, root / "operational")
            runtime.keys.forget()  # the system keys are the archive's now
            progress.stage("Warehouse tables", total=len(manifest.warehouse))
            with warehouse.transaction():
                for name in manifest.warehouse:
                    warehouse.replace(name, pq.read_table(root / "warehouse" / f"{name}.parquet"))
                    progress.advance()
        finally:
            warehouse.close()
        store.migrate()
        if (root / "artefacts").is_dir():
            progress.stage("Artefacts")
            artefacts.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(root / "artefacts", artefacts, dirs_exist_ok=True)
    return manifest
