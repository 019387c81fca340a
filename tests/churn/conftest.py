"""A tiny hand-made shop for the churn features, the engines to load it into, and the retail churn run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.analytics.artefacts import ARTEFACT_TABLES, publish
from patron.churn.service import ChurnResult, churn_step, write_churn_report
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES
from tests.conftest import PG_URL

CUT_OFF = datetime(2024, 7, 1)
RETAIL_AS_OF = datetime(2011, 12, 10)

PRODUCTS: list[dict[str, Any]] = [
    {"product_key": "p1", "source": "t", "category": "shoes", "price": 100.0},
    {"product_key": "p2", "source": "t", "category": "bags", "price": 50.0},
    {"product_key": "p3", "source": "t", "category": "toys", "price": 70.0},
    {"product_key": "p4", "source": "t", "category": None, "price": 30.0},
    {"product_key": "p5", "source": "t", "category": "books", "price": 40.0},
]


def _order(key: str, member: str | None, at: str, status: str, amount: float, discount: float = 0.0) -> dict[str, Any]:
    return {
        "order_key": key,
        "source": "t",
        "member_key": member,
        "ordered_at": datetime.fromisoformat(at),
        "status": status,
        "channel": "web",
        "amount": amount,
        "discount": discount,
    }


def _line(order: str, no: int, product: str | None, amount: float, returned: bool = False) -> dict[str, Any]:
    return {
        "order_key": order,
        "line_no": no,
        "product_key": product,
        "quantity": 1,
        "unit_price": amount,
        "amount": amount,
        "discount": 0.0,
        "returned": returned,
    }


# a: repeat buyer (two orders on one day, a cancellation, a returned line, an order at the cut-off)
# b: one purchase day before the cut-off, buys again inside the horizon
# c: only a cancellation before the cut-off (not a member to describe)
# d: first order after the cut-off
# e: an order without lines; a cancellation inside the horizon and an order exactly at its end: churned
ORDERS: list[dict[str, Any]] = [
    _order("o1", "a", "2023-11-10 09:00:00", "completed", 100.0),
    _order("o2", "a", "2024-02-15 10:00:00", "completed", 90.0, 10.0),
    _order("o3", "a", "2024-02-15 18:30:00", "completed", 50.0),
    _order("o4", "a", "2024-03-20 12:00:00", "cancelled", 40.0),
    _order("o5", "a", "2024-05-05 12:00:00", "completed", 70.0, 5.0),
    _order("o6", "a", "2024-06-30 23:59:59", "completed", 20.0),
    _order("o7", "a", "2024-07-01 00:00:00", "completed", 35.0),
    _order("o8", "b", "2023-12-01 08:00:00", "completed", 300.0, 30.0),
    _order("o9", "b", "2024-08-15 08:00:00", "completed", 80.0),
    _order("o10", "c", "2024-03-01 08:00:00", "cancelled", 60.0),
    _order("o11", "d", "2024-07-05 08:00:00", "completed", 25.0),
    _order("o12", "e", "2024-06-01 15:00:00", "completed", 15.0),
    _order("o13", "e", "2024-09-29 00:00:00", "completed", 45.0),
    _order("o14", "e", "2024-07-10 10:00:00", "cancelled", 45.0),
    _order("o15", None, "2024-06-10 10:00:00", "completed", 99.0),
]
LINES: list[dict[str, Any]] = [
    _line("o1", 1, "p1", 100.0),
    _line("o2", 1, "p2", 60.0, returned=True),
    _line("o2", 2, "p4", 30.0),
    _line("o3", 1, "p2", 50.0),
    _line("o4", 1, "p5", 40.0),  # the only "books": cancelled, so never bought
    _line("o5", 1, "p3", 70.0),
    _line("o6", 1, "p1", 20.0),
    _line("o7", 1, "p2", 35.0),
    _line("o8", 1, "p1", 300.0),
    _line("o9", 1, "p3", 80.0),
    _line("o10", 1, "p1", 60.0),
    _line("o11", 1, "p2", 25.0),
    _line("o13", 1, "p1", 45.0),
    _line("o14", 1, "p2", 45.0),
    _line("o15", 1, "p3", 99.0),
]


def arrow(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the warehouse schema of ``name`` (missing columns null)."""
    schema = TABLES[name].to_pyarrow()
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in schema} for row in rows], schema=schema)


def load(
    con: ibis.BaseBackend,
    orders: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    products: list[dict[str, Any]] = PRODUCTS,
    prefix: str = "",
) -> tuple[ir.Table, ir.Table, ir.Table]:
    """Create the three warehouse tables on ``con``; returns (orders, order_lines, products)."""
    tables = []
    for name, rows in (("orders", orders), ("order_lines", lines), ("products", products)):
        tables.append(con.create_table(f"{prefix}{name}", arrow(name, rows), overwrite=True))
    return tables[0], tables[1], tables[2]


@pytest.fixture
def duck() -> Iterator[ibis.BaseBackend]:
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


@pytest.fixture
def postgres() -> Iterator[ibis.BaseBackend]:
    """The PostgreSQL test database; skipped without one, failed when PATRON_REQUIRE_POSTGRES is set."""
    if not PG_URL:
        if os.environ.get("PATRON_REQUIRE_POSTGRES"):
            pytest.fail("PATRON_TEST_DATABASE_URL is not set")
        pytest.skip("PATRON_TEST_DATABASE_URL is not set")
    con = ibis.connect(PG_URL)
    yield con
    con.disconnect()


@pytest.fixture(scope="session")
def retail_churn(retail: Runtime) -> ChurnResult:
    """The churn step on online-retail as of 2011-12-10 (the day after the last invoice), run once."""
    with retail.warehouse(read_only=True) as warehouse:
        return churn_step(
            warehouse.table("orders"), warehouse.table("order_lines"), warehouse.table("products"), RETAIL_AS_OF
        )


def publish_build(runtime: Runtime, result: ChurnResult | None, build_id: int = 1) -> Path:
    """Make a build with the (empty) artefacts serving reads and, if given, the churn report current."""
    build_dir = runtime.settings.artefact_dir / f"build-{build_id}"
    build_dir.mkdir(parents=True)
    for name in ARTEFACT_TABLES:
        pq.write_table(pa.table({"member_key": pa.array([], pa.string())}), build_dir / f"{name}.parquet")
    if result is not None:
        write_churn_report(result, build_dir)
    manifest = {"build_id": build_id, "as_of": "2025-01-01", "built_at": "2025-01-01T00:00:00", "members": 0}
    publish(runtime.settings.artefact_dir, build_dir, manifest)
    return build_dir


@pytest.fixture(scope="session")
def simulated_churn() -> ChurnResult:
    """The churn step on a simulated 800-member shop (see test_step.simulated_shop)."""
    from tests.churn.test_step import AS_OF, simulated_shop

    con = ibis.duckdb.connect()
    try:
        return churn_step(*load(con, *simulated_shop(800, seed=1)), AS_OF)
    finally:
        con.disconnect()
