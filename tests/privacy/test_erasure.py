"""Erasure, proven: afterwards no personal value of the member is anywhere Patron keeps or writes data.

Through the API a support operator files and executes an erasure request for
a member whose values nobody else has. Then the test takes a backup, exports
everything that can still be exported for the key, and searches every
operational table, every warehouse table (the DuckDB file, queried), every
file under the data directory (raw bytes; Parquet read as tables; the log
file the test writes at DEBUG) and every file in a backup archive taken afterwards. Points
end at zero through one balanced ledger transaction; the member's orders are
still counted in the KPIs of a fresh build. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from patron.analytics.artefacts import reader_for
from patron.analytics.build import build_profiles
from patron.analytics.service import kpi_report
from patron.api.app import create_app
from patron.audit.models import AuditEntry
from patron.audit.service import list_audit
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.backup.service import backup
from patron.consent.service import member_consents, personalization_block
from patron.ingest.service import list_imports
from patron.loyalty.ledger_audit import ledger_anomalies
from patron.loyalty.ledger_models import LedgerTransaction
from patron.loyalty.ledger_service import get_balance, get_history
from patron.members.identity import member_key_of
from patron.members.vault import normalize_phone
from patron.members.vault_store import find_by_email
from patron.privacy.export import member_export
from patron.promotions.models import Coupon
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, new_client, sign_in
from tests.privacy.conftest import PERSON, SOURCE_ID, PersonShop, _imports


def _needles() -> dict[str, bytes]:
    """Every personal value, and the forms it may take once normalized."""
    values = dict(PERSON)
    values["email_lower"] = PERSON["email"].lower()
    values["phone_digits"] = normalize_phone(PERSON["phone"]).lstrip("+")
    values["name_lower"] = PERSON["name"].lower()
    values["street"] = PERSON["address"].split(",")[0]
    values["customer_id"] = SOURCE_ID
    return {label: value.encode() for label, value in values.items()}


NEEDLES = _needles()


def _found(blob: bytes) -> set[str]:
    lowered = blob.lower()
    return {label for label, needle in NEEDLES.items() if needle.lower() in lowered}


class _EveryField(logging.Formatter):
    """The message and every attribute of the record, the structured ``extra`` fields included."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{super().format(record)} {record.__dict__!r}"


@pytest.fixture
def debug_log(runtime: Runtime) -> Iterator[Path]:
    """Patron's logging, every level, into a file in the data directory for the whole test.

    SQLAlchemy's engine logger stays at WARNING: at INFO and below it writes
    every statement's bound parameters (a debugging aid never to run in production).
    """
    path = runtime.settings.home / "logs" / "patron.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(_EveryField())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("sqlalchemy", "sqlalchemy.engine")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


def _operational_dump(runtime: Runtime) -> bytes:
    """Every row of every table the database holds (whatever the models say), as text."""
    out = io.StringIO()
    engine = runtime.store.engine
    with engine.connect() as conn:
        for table in sorted(inspect(engine).get_table_names()):
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.write(f"{table}: {tuple(row)!r}\n")
    return out.getvalue().encode()


def _warehouse_dump(path: Path) -> bytes:
    out = io.StringIO()
    con = duckdb.connect(str(path), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
                out.write(f"{table}: {row!r}\n")
    finally:
        con.close()
    return out.getvalue().encode()


def _file_contents(name: str, blob: bytes) -> list[bytes]:
    """The bytes of a file and, for a Parquet file, its rows as text."""
    parts = [blob]
    if name.endswith(".parquet"):
        parts.append(repr(pq.read_table(io.BytesIO(blob)).to_pylist()).encode())
    return parts


def _scan_directory(home: Path) -> dict[str, set[str]]:
    hits: dict[str, set[str]] = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        blob = path.read_bytes()
        parts = _file_contents(path.name, blob)
        if path.suffix == ".duckdb":
            parts.append(_warehouse_dump(path))
        if found := set().union(*(_found(part) for part in parts)):
            hits[str(path.relative_to(home))] = found
    return hits


def _scan_archive(archive: Path) -> tuple[dict[str, set[str]], int]:
    hits: dict[str, set[str]] = {}
    files = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            files += 1
            parts = _file_contents(member.name, handle.read())
            if found := set().union(*(_found(part) for part in parts)):
                hits[member.name] = found
    return hits, files


def _kpis(runtime: Runtime) -> tuple[int, float]:
    total = kpi_report(reader_for(runtime.settings.artefact_dir), date(2024, 1, 1), date(2026, 1, 1), "month").total
    assert total is not None
    return total.orders, round(total.gmv, 2)


def _client(runtime: Runtime) -> Iterator[TestClient]:
    create_operator(runtime.store, OperatorCreate(username="privacy-support", password=PASSWORD, role="support"))
    with new_client(create_app(runtime)) as client:
        sign_in(client, "privacy-support")
        yield client


@pytest.fixture
def support(person_shop: PersonShop) -> Iterator[TestClient]:
    yield from _client(person_shop.runtime)


def test_the_shop_holds_the_members_values_before_the_erasure(person_shop: PersonShop) -> None:
    """The search finds them while they are there: the proof below can fail."""
    runtime = person_shop.runtime
    export = json.dumps(member_export(runtime, person_shop.member_key), ensure_ascii=False).encode()
    database = runtime.settings.home / "patron.db"

    assert set(NEEDLES) - {"phone_digits"} <= _found(export)
    assert {"email", "name", "address", "birthday", "customer_id"} <= _found(_operational_dump(runtime))
    if database.exists():  # SQLite: the values are in the file's bytes
        assert {"name", "address", "customer_id"} <= _found(database.read_bytes() + _wal(database))


def _wal(database: Path) -> bytes:
    wal = database.with_name(database.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def _erase(support: TestClient, member: str) -> dict[str, Any]:
    filed = support.post("/api/v1/privacy/requests", json={"kind": "erasure", "member_key": member, "note": "by app"})
    executed = support.post(f"/api/v1/privacy/requests/{filed.json()['id']}/execute")
    assert filed.status_code == 201 and executed.status_code == 200, executed.text
    done: dict[str, Any] = executed.json()["request"]
    return done


def test_after_erasure_no_personal_value_of_the_member_is_anywhere(
    debug_log: Path, person_shop: PersonShop, support: TestClient
) -> None:
    runtime, member = person_shop.runtime, person_shop.member_key
    orders_before = _kpis(runtime)
    assert personalization_block(runtime.store, member) == "consent_withdrawn"

    done = _erase(support, member)

    assert done["status"] == "completed" and done["handled_by"] == "operator:privacy-support"
    assert done["outcome"]["points_forfeited"] == person_shop.points
    assert done["outcome"]["coupons_voided"] == 1
    # the duplicate member row, the bad order line, the legacy rows naming the customer id and the phone
    assert done["outcome"]["quarantined_rows_deleted"] == 4
    assert done["outcome"]["quarantined_rows_blanked"] == 1  # another customer's row mentioning the member
    assert done["outcome"]["identity_removed"] is True

    build_profiles(runtime, with_models=False)  # a fresh build after the erasure
    export = json.dumps(member_export(runtime, member), ensure_ascii=False, default=str).encode()
    logging.getLogger("patron.test").debug("after erasure", extra={"member_key": member})

    assert _found(export) == set()
    assert _found(_operational_dump(runtime)) == set()
    assert _scan_directory(runtime.settings.home) == {}
    logged = debug_log.read_bytes()
    assert b"import finished" in logged and b"member erased" in logged and member.encode() in logged

    # the orders stay, anonymous: counted in the KPIs of the fresh build, under the unlinked key
    assert _kpis(runtime) == orders_before
    document = member_export(runtime, member)
    assert {o["order_key"] for o in document["warehouse"]["orders"]} == {"crm:O-1", "crm:O-2"}
    assert document["identity"] == [] and document["personal"] is None


def test_a_backup_taken_after_the_erasure_holds_no_personal_value(
    person_shop: PersonShop, support: TestClient, tmp_path: Path
) -> None:
    runtime = person_shop.runtime
    _erase(support, person_shop.member_key)

    archive, manifest = backup(runtime, tmp_path / "backups")

    hits, files = _scan_archive(archive)
    assert hits == {}
    assert files == len(manifest.files) + 1  # every file the manifest lists, and the manifest
    assert manifest.operational["member_vault"] > 0 and manifest.warehouse["orders"] > 0


def test_erasure_forfeits_points_voids_unused_coupons_and_restricts_the_key(
    person_shop: PersonShop, support: TestClient
) -> None:
    runtime, member = person_shop.runtime, person_shop.member_key
    filed = support.post("/api/v1/privacy/requests", json={"kind": "erasure", "member_key": member})
    request_id = filed.json()["id"]

    first = support.post(f"/api/v1/privacy/requests/{request_id}/execute")
    again = support.post(f"/api/v1/privacy/requests/{request_id}/execute")
    refiled = support.post("/api/v1/privacy/requests", json={"kind": "export", "member_key": member})

    assert first.status_code == 200 and again.status_code == 409 and refiled.status_code == 404
    balance = get_balance(runtime.store, member)
    assert (balance.available, balance.pending) == (0, 0)
    forfeit = get_history(runtime.store, member, 1, 1).items[0]
    assert forfeit.kind == "adjust" and forfeit.points == person_shop.points
    assert f"privacy request {request_id}" in forfeit.memo
    assert sum(e.amount for e in forfeit.entries) == 0
    assert {e.account for e in forfeit.entries} == {f"available:{member}", f"pending:{member}", "adjustment:adjustment"}
    with runtime.store.session() as session:
        assert ledger_anomalies(session) == []
        statuses = dict(session.execute(select(Coupon.code, Coupon.status).where(Coupon.member_key == member)).all())
        kinds = session.scalars(select(LedgerTransaction.kind).where(LedgerTransaction.member_key == member)).all()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erasure")).one()
    assert statuses == {code: ("expired" if s == "issued" else s) for code, s in person_shop.coupons.items()}
    assert "adjust" in kinds
    consents = member_consents(runtime.store, member)
    assert consents.restriction is not None and consents.restriction.reason == "erasure"
    assert not any(c.allowed for c in consents.consents)
    assert entry.target == member and entry.details["points_forfeited"] == person_shop.points
    assert _found(json.dumps(entry.details).encode()) == set()


def test_the_erased_customer_id_is_remembered_only_as_a_keyed_hash(
    person_shop: PersonShop, support: TestClient
) -> None:
    from patron.privacy.erasure import erased_source_ids

    runtime = person_shop.runtime
    filed = support.post("/api/v1/privacy/requests", json={"kind": "erasure", "member_key": person_shop.member_key})
    support.post(f"/api/v1/privacy/requests/{filed.json()['id']}/execute")

    assert erased_source_ids(runtime, "crm", [SOURCE_ID, "P-1002"]) == {SOURCE_ID}
    with runtime.store.engine.connect() as conn:
        stored = conn.execute(text("SELECT digest FROM erasure_tombstones")).scalars().all()
    assert len(stored) == 1 and SOURCE_ID not in stored[0]


def test_a_later_import_of_the_same_files_does_not_bring_the_erased_customer_back(
    person_shop: PersonShop, support: TestClient, tmp_path: Path
) -> None:
    runtime = person_shop.runtime
    filed = support.post("/api/v1/privacy/requests", json={"kind": "erasure", "member_key": person_shop.member_key})
    support.post(f"/api/v1/privacy/requests/{filed.json()['id']}/execute")
    again = tmp_path / "again"
    again.mkdir()
    before = _warehouse_rows(runtime)

    _imports(runtime, again)  # the shop sends its whole customer, order and event files again

    assert member_key_of(runtime.store, "crm", SOURCE_ID) is None
    assert member_key_of(runtime.store, "crm", "P-1002") == person_shop.other_key
    assert find_by_email(runtime.store, runtime.cipher, PERSON["email"]) == []
    runs = list_imports(runtime, limit=4)
    skipped = {run.source_name: run.notes.get("rows_of_erased_members") for run in runs}
    assert skipped == {
        "events.csv": {"events": 2},
        "lines.csv": {"orders": 2, "order_lines": 3},
        "products.csv": None,
        "members.csv": {"members": 1},  # its repeated row is quarantined as a duplicate key first
    }
    assert _found(json.dumps([run.model_dump(mode="json") for run in runs]).encode()) == set()
    assert _warehouse_rows(runtime) == before  # no new member, order or event row


def _warehouse_rows(runtime: Runtime) -> dict[str, int]:
    with runtime.warehouse() as warehouse:
        raw = warehouse.con.con
        return {t: raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("members", "orders", "events")}


def test_the_other_members_keep_their_data(person_shop: PersonShop, support: TestClient) -> None:
    runtime = person_shop.runtime
    before = member_export(runtime, person_shop.other_key)
    filed = support.post("/api/v1/privacy/requests", json={"kind": "erasure", "member_key": person_shop.member_key})
    support.post(f"/api/v1/privacy/requests/{filed.json()['id']}/execute")

    after = member_export(runtime, person_shop.other_key)

    assert after["personal"] == before["personal"] and after["personal"]["email"] == "ordinary@example.net"
    assert after["identity"] == before["identity"]
    audit = list_audit(runtime.store, page_size=200).items
    assert all(_found(json.dumps(a.details, default=str).encode()) == set() for a in audit)
