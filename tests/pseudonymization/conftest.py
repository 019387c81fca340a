"""The demo shop built once for the pseudonymization tests: imported, built, recommendations trained, served.

Every log record (DEBUG and up) from the moment the shop starts being built is kept in ``Shop.logs``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.analytics.artefacts import reader_for
from patron.analytics.build import build_profiles
from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.demo import generate_shop
from patron.demo.activation import seed_activation
from patron.ingest.service import import_batch, run_import
from patron.members.models import VaultEntry
from patron.members.vault_store import read_personal
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, ROLES, new_client, sign_in
from tests.conftest import PG_URL, _reset_postgres, make_settings

_PLAIN = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

# A members file from another source: the second row repeats the first member (quarantined as a duplicate),
# the third has a birthday that is not a date (quarantined); the personal values of both are in the vault
# (the first row's) or are personal all the same (the third's).
CRM_MEMBERS = """id,name,email,phone,birthday,city
crm-1,欧阳娜娜,nana.ouyang@crm.example.com,13900001111,1991-04-05,杭州
crm-1,欧阳娜娜,nana.ouyang@crm.example.com,13900001111,1991-04-05,杭州
crm-2,司马相如,xiangru.sima@crm.example.com,13700002222,not-a-date,成都
"""
CRM_MAPPING = {
    "entity": "members",
    "source": "crm",
    "columns": {
        "member_id": "id",
        "name": "name",
        "email": "email",
        "phone": "phone",
        "birthday": "birthday",
        "city": "city",
    },
}


# The test client's own request log (it names every URL it asks for): the caller's log, not Patron's.
_TEST_CLIENT = ("httpx2", "http://testserver/")


class LogCapture(logging.Handler):
    """Keeps every record as one line: logger, level, message, structured fields and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _TEST_CLIENT[0] and any(_TEST_CLIENT[1] in str(arg) for arg in record.args or ()):
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} % {record.args!r}"
        extras = {k: v for k, v in vars(record).items() if k not in _PLAIN}
        trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.lines.append(f"{record.name} {record.levelname} {message} {extras!r} {trace}")


@dataclass
class Shop:
    runtime: Runtime
    app: FastAPI
    clients: dict[str, TestClient]
    operators: dict[str, str]
    logs: LogCapture
    member_key: str  # a member with every personal field, profiled in the current build
    personal: dict[str, str | None]
    crm_run: int
    extras: dict[str, str] = field(default_factory=dict)


def _member_with_everything(runtime: Runtime) -> tuple[str, dict[str, str | None]]:
    profiled = set(reader_for(runtime.settings.artefact_dir).table("profiles").member_key.to_pyarrow().to_pylist())
    with runtime.store.session() as session:
        keys = list(session.scalars(select(VaultEntry.member_key).order_by(VaultEntry.member_key)))
    for key in keys:
        fields = read_personal(runtime.store, runtime.cipher, key)
        if key in profiled and fields and all(fields.values()):
            return key, fields
    raise AssertionError("the demo shop has no profiled member with every personal field")


def _build(runtime: Runtime, home: Path) -> int:
    import_batch(runtime, "demo", "demo-300-11", lambda: generate_shop(300, 11))
    crm = home / "crm-members.csv"
    crm.write_text(CRM_MEMBERS, encoding="utf-8")
    crm_run = run_import(runtime, "generic", crm, mapping=CRM_MAPPING).id
    build_profiles(runtime)
    seed_activation(runtime)
    return crm_run


@pytest.fixture(scope="package")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    logs = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    home = tmp_path_factory.mktemp("pseudonymization")
    runtime = Runtime(make_settings(home, database_url=PG_URL))
    try:
        runtime.store.migrate()
        if PG_URL:
            _reset_postgres(runtime)
        crm_run = _build(runtime, home)
        member_key, personal = _member_with_everything(runtime)
        tag = secrets.token_hex(3)
        operators = {role: f"{role}-{tag}" for role in ROLES}
        for role, username in operators.items():
            create_operator(runtime.store, OperatorCreate(username=username, password=PASSWORD, role=role))
        app = create_app(runtime)
        with ExitStack() as stack:
            clients = {}
            for role, username in operators.items():
                clients[role] = stack.enter_context(new_client(app))
                sign_in(clients[role], username)
            yield Shop(runtime, app, clients, operators, logs, member_key, personal, crm_run)
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        runtime.close()
