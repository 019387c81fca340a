"""No vault value leaves the vault: warehouse, artefacts, logs and exports of a built demo shop are scanned.

The demo shop (see conftest) is imported, built with every model, its recommendations trained and placed; then
every GET route is called by every role, the console pages by every role, a real server (uvicorn, with the
log configuration `patron serve` uses) is asked for a member by e-mail and for a member's personal data with
a reason, and the command line exports what it can. Every vault value is then read (decrypted) and looked for
in every warehouse table and column, every artefact file (bytes, Parquet columns, arrays, JSON), every log
record and log file, and every export.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn
from sqlalchemy import select
from typer.testing import CliRunner

from patron.cli.main import app as cli
from patron.loyalty.program_models import LoyaltyOrder
from patron.members.models import VaultEntry
from patron.members.vault_store import read_personal
from patron.recs import registry
from patron.retention.logs import server_log_config
from patron.settings import PLACEHOLDER_MASTER_KEY
from patron.tags.schemas import TagCreate
from patron.tags.service import create_tag
from patron.warehouse.store import connect_duckdb
from tests.api.conftest import PASSWORD, ROLES
from tests.conftest import PG_URL
from tests.pseudonymization.conftest import LogCapture, Shop
from tests.pseudonymization.scanner import Finding, Needles, arrow_text, file_texts

pytestmark = pytest.mark.slow

REASON = "customer asked us to confirm the delivery address"
REJECTED = {"name": "司马相如", "email": "xiangru.sima@crm.example.com", "phone": "13700002222"}  # quarantined row
# Routes whose purpose is to show personal data to the roles allowed to see it (checked in test_field_access).
PERSONAL_ROUTES = ("/api/v1/members/{member_key}", "/api/v1/privacy/")


def _needles(shop: Shop) -> Needles:
    store, cipher = shop.runtime.store, shop.runtime.cipher
    with store.session() as session:
        keys = list(session.scalars(select(VaultEntry.member_key)))
    entries = [read_personal(store, cipher, key) or {} for key in keys]
    return Needles.from_vault([*entries, REJECTED])


# --- what is scanned --------------------------------------------------------------------


def _warehouse(shop: Shop) -> Iterator[tuple[str, str]]:
    location = shop.runtime.settings.warehouse_location.removeprefix("duckdb:///")
    con = connect_duckdb(location, read_only=True)
    try:
        for table in con.list_tables():
            rows: pa.Table = con.table(table).to_pyarrow()
            for column, text in arrow_text(rows):
                yield f"warehouse {table}.{column}", text
    finally:
        con.disconnect()


def _artefacts(shop: Shop) -> Iterator[tuple[str, str]]:
    for path in sorted(shop.runtime.settings.artefact_dir.rglob("*")):
        if path.is_file():
            yield from file_texts(path)


def _path_values(shop: Shop) -> dict[str, str]:
    store = shop.runtime.store
    with store.session() as session:
        order_key = session.scalars(select(LoyaltyOrder.order_key).limit(1)).one()
    version = registry.list_versions(store)[0].id
    tag = create_tag(store, TagCreate(name="scan-tag", rule="frequency > 1"), "scan").name
    item = shop.clients["admin"].get(f"/api/v1/recs/members/{shop.member_key}", params={"placement": "home"})
    item_id = item.json()["items"][0]["item_id"] if item.status_code == 200 and item.json()["items"] else "p1"
    return {
        "member_key": shop.member_key,
        "run_id": str(shop.crm_run),
        "order_key": order_key,
        "version_id": version,
        "item_id": item_id,
        "request_id": "1",
        "tag": tag,
    }


def _fill(path: str, values: dict[str, str]) -> str:
    if path.startswith("/api/v1/loyalty/jobs/"):
        values = values | {"name": "points-expiry"}
    elif path.startswith("/api/v1/recs/placements/"):
        values = values | {"name": "home"}
    elif path.startswith("/api/v1/tags/"):
        values = values | {"name": values["tag"]}
    return path.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})


def _api(shop: Shop) -> Iterator[tuple[str, str]]:
    """Every GET route by every role (routes meant to show personal data: by the roles without it)."""
    spec = shop.clients["admin"].get("/openapi.json").json()
    values = _path_values(shop)
    params = {"/api/v1/funnels": {"steps": "view,cart,purchase"}}
    for path, operations in sorted(spec["paths"].items()):
        if "get" not in operations:
            continue
        for role in ROLES:
            if path.startswith(PERSONAL_ROUTES) and role in ("admin", "support"):
                continue
            response = shop.clients[role].get(_fill(path, values), params=params.get(path, {}))
            assert response.status_code < 500, (path, role, response.text)
            yield f"GET {path} as {role}", response.text


def _console(shop: Shop) -> Iterator[tuple[str, str]]:
    pages = ["/", "/members", "/members?q=1", f"/members/{shop.member_key}", "/segments", "/recs", "/loyalty"]
    for role in ROLES:
        for page in pages:
            if page.startswith("/members/") and role in ("admin", "support"):
                continue  # admin sees personal data there by design; support masked (test_field_access)
            response = shop.clients[role].get(page)
            yield f"console {page} as {role}", response.text


def _cli(shop: Shop, out: Path) -> Iterator[tuple[str, str]]:
    env = {
        "PATRON_HOME": str(shop.runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
    }
    audit_file = out / "audit.jsonl"
    commands = [
        ["audit", "export", "--output", str(audit_file)],
        ["imports", "list", "--json"],
        ["imports", "quarantine", str(shop.crm_run), "--json"],
        ["segments", "--json"],
        ["kpis", "--json"],
        ["churn", "report", "--json"],
        ["recs", "versions", "--json"],
        ["recs", "placements", "--json"],
        ["tags", "list", "--json"],
        ["status", "--json"],
    ]
    for command in commands:
        result = CliRunner().invoke(cli, command, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (command, result.output)
        yield "patron " + " ".join(command), result.output
    yield from file_texts(audit_file)


def _real_server(shop: Shop) -> list[str]:
    """Ask a real server (uvicorn, `patron serve`'s log configuration) for personal data; its access log lines."""
    config = uvicorn.Config(shop.app, host="127.0.0.1", port=0, log_config=server_log_config(), lifespan="off")
    access = LogCapture()
    for name in ("uvicorn", "uvicorn.access"):  # they do not propagate to the root logger
        logging.getLogger(name).addHandler(access)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}/api/v1"
        login = json.dumps({"username": shop.operators["support"], "password": PASSWORD}).encode()
        request = urllib.request.Request(f"{base}/auth/login", login, {"content-type": "application/json"})
        with urllib.request.urlopen(request) as response:
            token = json.load(response)["token"]
        headers = {"authorization": f"Bearer {token}"}
        queries = [
            f"/members?{urllib.parse.urlencode({'q': shop.personal['email']})}",
            f"/members?{urllib.parse.urlencode({'q': shop.personal['phone']})}",
            f"/members/{shop.member_key}?{urllib.parse.urlencode({'reason': REASON})}",
        ]
        for query in queries:
            with urllib.request.urlopen(urllib.request.Request(base + query, headers=headers)) as response:
                assert response.status == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for name in ("uvicorn", "uvicorn.access"):
            logging.getLogger(name).removeHandler(access)
    return access.lines


# --- the tests ---------------------------------------------------------------------------


def test_the_scanner_finds_planted_values_wherever_they_are(shop: Shop, tmp_path: Path) -> None:
    """The scan can fail: each kind of vault value, planted in each kind of place, is found."""
    needles = _needles(shop)
    email, phone, name, address = (shop.personal[k] or "" for k in ("email", "phone", "name", "address"))
    plant = tmp_path / "planted"
    plant.mkdir()
    pq.write_table(pa.table({"who": [f"x {name} y"], "n": [1]}), plant / "profiles.parquet", compression="zstd")
    (plant / "report.json").write_text(json.dumps({"contact": email.upper()}))  # ASCII escapes and upper case
    np.savez_compressed(plant / "arrays.npz", ids=np.array(["m1", address]))
    (plant / "model.bin").write_bytes(b"\x00\x01" + f"+86 {phone}".encode() + b"\xff")

    found = {f.field for path in plant.iterdir() for where, text in file_texts(path) for f in needles.find(text, where)}
    log_line = f"member lookup {{'phone': '+86-{phone}'}}"
    access_line = f'127.0.0.1:5000 - "GET /api/v1/members?q={urllib.parse.quote(email)} HTTP/1.1" 200'

    assert found == {"name", "email", "address", "phone"}
    assert [f.field for f in needles.find(log_line, "log")] == ["phone"]
    assert [f.field for f in needles.find(access_line, "log")] == ["email"]
    assert needles.find("m0123456789abcdef bought 3 items for 99.50 on 2025-03-01", "log") == []


def test_no_vault_value_is_in_the_warehouse_artefacts_logs_or_exports(shop: Shop, tmp_path: Path) -> None:
    exports = [*_api(shop), *_console(shop), *_cli(shop, tmp_path)]
    access_log = _real_server(shop)
    needles = _needles(shop)
    warehouse, artefacts = list(_warehouse(shop)), list(_artefacts(shop))
    log_files = [text for path in shop.runtime.settings.home.rglob("*.log") for _, text in file_texts(path)]
    logs = [(f"log {line.split(' ', 1)[0]}", line) for line in (*shop.logs.lines, *access_log, *log_files)]

    findings: list[Finding] = []
    for where, text in (*warehouse, *artefacts, *logs, *exports):
        findings += needles.find(text, where)

    assert findings == [], findings[:20]
    # what was scanned: enough of everything for "nothing found" to mean something
    assert needles.count > 1_000
    assert len({where.split(".")[0] for where, _ in warehouse}) >= 10
    assert sum(1 for where, _ in artefacts if where.endswith(".parquet (latin-1)")) >= 10
    assert any(".npz!" in where for where, _ in artefacts)
    for message in ("import finished", "build finished", "recommendation version trained"):
        assert any(message in line for line in shop.logs.lines), message
    assert any("?[redacted]" in line for line in access_log)
    assert len(exports) > 150
