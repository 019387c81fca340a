"""Hostile-input fixtures: a small shop whose members carry script in their names, the real app over it.

The shop is imported through the generic importer (members with names, e-mail
addresses and regions; their orders) and built without models, in a store of
its own: SQLite in the module's data directory, or the PostgreSQL test
database when PATRON_TEST_DATABASE_URL is set. Each module gets its own shop,
operators (one per role, named after it) and an admin API key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, inspect, select

from patron.analytics.build import build_profiles
from patron.api.app import create_app
from patron.auth.rules import PERMISSIONS
from patron.auth.schemas import ApiKeyCreate, OperatorCreate
from patron.auth.service import create_api_key, create_operator
from patron.db.base import Base
from patron.ingest.service import run_import
from patron.members.identity import member_key_of
from patron.runtime import Runtime
from patron.settings import Settings
from tests.conftest import PG_URL, _reset_postgres, make_settings

PASSWORD = "security-test-pass-1"
ROLES = ("admin", "analyst", "marketer", "support")
SCRIPT_NAME = "<script>alert(1)</script>"
ATTRIBUTE_NAME = '"><img src=x onerror=alert(1)>'
SCRIPT_REGION = "<script>alert('region')</script>"
ATTRIBUTE_REGION = "'><svg onload=alert(2)>"
# Tables that legitimately grow when requests are made: sessions and the audit trail.
GROWING_TABLES = frozenset({"operator_sessions", "audit_log", "audit_chain_head"})


@dataclass(frozen=True)
class Shop:
    """The built shop: its runtime, the hostile members' keys and an admin API key."""

    runtime: Runtime
    script_member: str
    attribute_member: str
    plain_member: str
    admin_key: str


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _shop_files(folder: Path) -> tuple[Path, Path]:
    """Members 1-2 carry script in name and region; 3-24 are ordinary; each has two to four orders."""
    members: list[dict[str, object]] = [
        {"id": "1", "name": SCRIPT_NAME, "email": "s1@example.com", "region": SCRIPT_REGION, "signup": "2024-01-02"},
        {
            "id": "2",
            "name": ATTRIBUTE_NAME,
            "email": "s2@example.com",
            "region": ATTRIBUTE_REGION,
            "signup": "2024-01-03",
        },
    ]
    members += [
        {"id": str(n), "name": f"Member {n}", "email": f"m{n}@example.com", "region": "North", "signup": "2024-01-05"}
        for n in range(3, 25)
    ]
    orders = [
        {
            "order_id": f"o{n}-{k}",
            "member_id": str(n),
            "ordered_at": f"2024-{k + 1:02d}-1{n % 10}",
            "amount": 10 * n + k,
        }
        for n in range(1, 25)
        for k in range(2 + n % 3)
    ]
    member_file, order_file = folder / "members.csv", folder / "orders.csv"
    member_file.write_text(_csv(members))
    order_file.write_text(_csv(orders))
    return member_file, order_file


def build_shop(home: Path, **overrides: object) -> Shop:
    """Create, import and build the shop in ``home`` (settings as in tests, with ``overrides``)."""
    settings = make_settings(home, database_url=PG_URL).model_copy(update=overrides)
    runtime = Runtime(Settings.model_validate(settings.model_dump()))
    home.mkdir(parents=True)
    runtime.store.migrate()
    if runtime.settings.database_url:
        _reset_postgres(runtime)
    member_file, order_file = _shop_files(home.parent)
    member_columns = {"member_id": "id", "name": "name", "email": "email", "region": "region", "signup_at": "signup"}
    run_import(runtime, "generic", member_file, mapping={"entity": "members", "columns": member_columns})
    order_columns = {"order_id": "order_id", "member_id": "member_id", "ordered_at": "ordered_at", "amount": "amount"}
    run_import(runtime, "generic", order_file, mapping={"entity": "orders", "columns": order_columns})
    build_profiles(runtime, with_models=False)
    for role in ROLES:
        create_operator(runtime.store, OperatorCreate(username=role, password=PASSWORD, role=role))
    every = ApiKeyCreate(name="admin key", role="admin", scopes=list(PERMISSIONS))
    admin_key = create_api_key(runtime.store, every, None).key

    def keyed(source_id: str) -> str:
        found = member_key_of(runtime.store, "generic", source_id)
        assert found is not None, source_id
        return found

    return Shop(runtime, keyed("1"), keyed("2"), keyed("3"), admin_key)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    built = build_shop(tmp_path_factory.mktemp("shop") / "home")
    yield built
    built.runtime.close()


@pytest.fixture(scope="module")
def shop_app(shop: Shop) -> FastAPI:
    return create_app(shop.runtime)


def table_counts(runtime: Runtime) -> dict[str, int]:
    """Rows per operational table (except the ones requests add to) and per warehouse table."""
    counts: dict[str, int] = {}
    with runtime.store.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name in names and table.name not in GROWING_TABLES:
                counts[f"store.{table.name}"] = int(conn.scalar(select(func.count()).select_from(table)) or 0)
        assert names >= {t.name for t in Base.metadata.sorted_tables}, "an operational table is gone"
    with runtime.warehouse(read_only=True) as warehouse:
        assert warehouse.is_initialised(), "a warehouse table is gone"
        counts |= {f"warehouse.{name}": n for name, n in warehouse.counts().items()}
    return counts


__all__ = [
    "ATTRIBUTE_NAME",
    "ATTRIBUTE_REGION",
    "PASSWORD",
    "ROLES",
    "SCRIPT_NAME",
    "SCRIPT_REGION",
    "Shop",
    "build_shop",
    "table_counts",
]
