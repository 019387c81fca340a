"""`patron backup` then `patron restore` gives back both stores and the build, exactly."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.alerts.schemas import AlertRuleCreate
from patron.alerts.service import create_rule
from patron.analytics.build import build_profiles
from patron.audit.chain import verify_chain
from patron.audit.service import record
from patron.auth.schemas import OperatorCreate
from patron.auth.service import authenticate, create_operator
from patron.backup import backup, restore
from patron.backup.operational import tables
from patron.demo import generate_shop
from patron.errors import ConflictError, ValidationError
from patron.ingest.service import import_batch
from patron.members.vault_store import read_personal
from patron.runtime import Runtime
from patron.settings import Settings
from patron.warehouse.schema import TABLES
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

PASSWORD = "backup-test-pass-1"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A small demo shop, built, with operators, an alert rule and audit entries (embedded stores)."""
    rt = Runtime(make_settings(tmp_path_factory.mktemp("source")))
    rt.store.migrate()
    import_batch(rt, "demo", "demo-300-3", lambda: generate_shop(300, 3))
    build_profiles(rt, with_models=False)
    create_operator(rt.store, OperatorCreate(username="keeper", password=PASSWORD, role="admin"))
    create_rule(rt, AlertRuleCreate(name="gmv-floor", metric="gmv", kind="threshold", op="<", value=1.0), "keeper")
    record(rt.store, "keeper", "member.personal_read", "m0000000000000001", source_ip="127.0.0.1")
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def archive(source: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _manifest = backup(source, tmp_path_factory.mktemp("archives"))
    return path


def _operational(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with rt.store.engine.connect() as conn:
        for table in tables():
            order = list(table.primary_key.columns)
            rows = conn.execute(table.select().order_by(*order)).all()
            out[table.name] = [tuple(_plain(v) for v in row) for row in rows]
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is None and hasattr(value, "hour"):
        return value.isoformat() + "+00:00"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _warehouse(rt: Runtime) -> dict[str, Any]:
    with rt.warehouse(read_only=True) as wh:
        return {
            name: wh.table(name).to_pyarrow().sort_by([(c, "ascending") for c in TABLES[name].names]).to_pylist()
            for name in TABLES
        }


def _artefact_hashes(settings: Settings) -> dict[str, str]:
    root = settings.artefact_dir
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_restore_gives_back_every_row_file_and_secret(source: Runtime, archive: Path, runtime: Runtime) -> None:
    manifest = restore(runtime, archive)

    assert _operational(runtime) == _operational(source)
    assert _warehouse(runtime) == _warehouse(source)
    assert _artefact_hashes(runtime.settings) == _artefact_hashes(source.settings)
    assert manifest.warehouse["orders"] > 0 and manifest.operational["member_identities"] > 0
    # What depends on secrets still works: passwords, the vault, the audit chain.
    assert authenticate(runtime.store, "keeper", PASSWORD).role == "admin"
    with source.store.engine.connect() as conn:
        key = conn.exec_driver_sql("SELECT member_key FROM member_vault ORDER BY member_key LIMIT 1").scalar_one()
    assert read_personal(source.store, source.cipher, key)
    assert read_personal(runtime.store, runtime.cipher, key) == read_personal(source.store, source.cipher, key)
    assert verify_chain(runtime.store, runtime.store.audit_key()).ok
    # New writes after a restore continue the keys and the chain.
    record(runtime.store, "keeper", "system.check")
    assert verify_chain(runtime.store, runtime.store.audit_key()).ok
    create_operator(runtime.store, OperatorCreate(username="after", password=PASSWORD, role="analyst"))


def test_the_archive_holds_no_personal_datum_in_clear(source: Runtime, archive: Path) -> None:
    with source.store.engine.connect() as conn:
        keys = [
            row[0] for row in conn.exec_driver_sql("SELECT member_key FROM member_vault ORDER BY member_key LIMIT 50")
        ]
    values = [
        v for k in keys for v in (read_personal(source.store, source.cipher, k) or {}).values() if v and len(v) > 3
    ]
    assert values
    blob = gzip.decompress(archive.read_bytes())
    found = [v for v in values if v.encode() in blob]
    assert found == []


def test_restore_refuses_a_store_that_is_not_empty(archive: Path, runtime: Runtime) -> None:
    runtime.store.migrate()
    create_operator(runtime.store, OperatorCreate(username="someone", password=PASSWORD, role="analyst"))
    with pytest.raises(ConflictError, match="operators"):
        restore(runtime, archive)


def test_restore_refuses_another_master_key(archive: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "other", env="development", master_key=None)
    settings.ensure_key_file()
    rt = Runtime(settings)
    try:
        with pytest.raises(ValidationError, match="another master key"):
            restore(rt, archive)
        assert not rt.settings.artefact_dir.exists()
    finally:
        rt.close()


def _rewrite(archive: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """Copy an archive, replacing (or dropping, with None) some members."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            if member.name in change:
                data = change[member.name]
                if data is None:
                    continue
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
            else:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return target


def test_a_damaged_or_foreign_archive_is_refused_before_anything_is_written(
    archive: Path, tmp_path: Path, runtime: Runtime
) -> None:
    damaged = _rewrite(archive, tmp_path / "damaged.tar.gz", {"backup/operational/operators.jsonl": b"{}\n"})
    with pytest.raises(ValidationError, match=r"operators\.jsonl is damaged"):
        restore(runtime, damaged)
    missing = _rewrite(archive, tmp_path / "missing.tar.gz", {"backup/manifest.json": None})
    with pytest.raises(ValidationError, match="no manifest"):
        restore(runtime, missing)
    escaping = tmp_path / "escape.tar.gz"
    with tarfile.open(escaping, "w:gz") as tar:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValidationError, match="not a readable Patron backup"):
        restore(runtime, escaping)
    assert not (tmp_path.parent / "outside.txt").exists()
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not an archive")
    with pytest.raises(ValidationError, match="not a readable"):
        restore(runtime, garbage)
    with runtime.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM operators").scalar() == 0


def test_the_manifest_lists_counts_and_checksums(archive: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile("backup/manifest.json")
        assert handle is not None
        manifest = json.load(handle)
        names = {m.name.removeprefix("backup/") for m in tar.getmembers() if m.isfile()}
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["warehouse"]["order_lines"] > manifest["warehouse"]["orders"] > 0
    assert "master.key" not in " ".join(names)
