"""A small planted shop for the interactions, rules, serving and training tests, and engine fixtures.

The shop (every number below is planted, so tests can state expectations by hand):

- 30 products: ``c00..c09`` coffee (price 5..14), ``s00..s09`` sofas (price 500..509),
  ``b00..b09`` books (price 10..19);
- 40 members ``m00..m39``; member ``mNN`` buys coffee ``c(NN % 10)`` in two orders (days 1 and 20),
  sofa ``s(NN % 10)`` once (day 5), and views book ``b(NN % 10)`` (day 25) and adds ``b((NN+1) % 10)`` to
  the cart (day 26);
- order ``o-ret`` of ``m00`` (day 30): sofa ``s05``, returned;
- order ``o-cancel`` of ``m01`` (day 30): coffee ``c09``, cancelled;
- purchase events: ``m02`` bought ``c02`` on day 20 (an order of it exists: not counted twice),
  ``m03`` bought ``b07`` on day 27 (no order: counts as a purchase);
- sessions: ``sess-1`` (no member) views ``b01`` then ``b02``; member events without a session id
  are cut at 30-minute gaps;
- inventory: ``c07`` out of stock (0 on hand, the latest count), ``c08`` restocked (0 then 5).

Days count from 2024-01-01; the as-of instant is 2024-02-10 (day 40).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from patron.recs.training import train_version
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES
from tests.conftest import PG_URL, make_settings

DAY0 = datetime(2024, 1, 1)
AS_OF = DAY0 + timedelta(days=40)
MEMBERS = [f"m{n:02d}" for n in range(40)]


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def shop_rows() -> dict[str, list[dict[str, Any]]]:
    """The planted shop as rows per warehouse table."""
    products = [
        {
            "product_key": f"{p}{n:02d}",
            "source": "t",
            "title": f"{name} {n}",
            "category": name,
            "brand": "",
            "price": base + n,
        }
        for p, name, base in (("c", "coffee", 5.0), ("s", "sofa", 500.0), ("b", "books", 10.0))
        for n in range(10)
    ]
    orders: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    def order(
        key: str, member: str, at: datetime, product: str, *, status: str = "completed", returned: bool = False
    ) -> None:
        orders.append(
            {
                "order_key": key,
                "source": "t",
                "member_key": member,
                "ordered_at": at,
                "status": status,
                "channel": "web",
                "amount": 1.0,
                "discount": 0.0,
            }
        )
        lines.append(
            {
                "order_key": key,
                "line_no": 1,
                "product_key": product,
                "quantity": 1,
                "unit_price": 1.0,
                "amount": 1.0,
                "discount": 0.0,
                "returned": returned,
            }
        )

    def event(member: str | None, session: str | None, product: str, kind: str, at: datetime) -> None:
        n = len(events)
        events.append(
            {
                "event_key": f"e{n}",
                "source": "t",
                "member_key": member,
                "session_id": session,
                "product_key": product,
                "category": None,
                "event_type": kind,
                "occurred_at": at,
                "channel": "web",
            }
        )

    for n, member in enumerate(MEMBERS):
        order(f"o-{member}-1", member, day(1), f"c{n % 10:02d}")
        order(f"o-{member}-2", member, day(20), f"c{n % 10:02d}")
        order(f"o-{member}-3", member, day(5), f"s{n % 10:02d}")
        event(member, None, f"b{n % 10:02d}", "view", day(25))
        event(member, None, f"b{(n + 1) % 10:02d}", "cart", day(26))
    order("o-ret", "m00", day(30), "s05", returned=True)
    order("o-cancel", "m01", day(30), "c09", status="cancelled")
    event("m02", None, "c02", "purchase", day(20) + timedelta(hours=2))
    event("m03", None, "b07", "purchase", day(27))
    event(None, "sess-1", "b01", "view", day(35))
    event(None, "sess-1", "b02", "view", day(35) + timedelta(minutes=3))
    event(None, None, "b03", "view", day(35))  # anonymous, no session: left out of sessions
    inventory = [
        {"product_key": "c07", "updated_at": day(10), "on_hand": 4, "lead_time_days": 7, "safety_stock": 1},
        {"product_key": "c07", "updated_at": day(30), "on_hand": 0, "lead_time_days": 7, "safety_stock": 1},
        {"product_key": "c08", "updated_at": day(10), "on_hand": 0, "lead_time_days": 7, "safety_stock": 1},
        {"product_key": "c08", "updated_at": day(30), "on_hand": 5, "lead_time_days": 7, "safety_stock": 1},
    ]
    return {"products": products, "orders": orders, "order_lines": lines, "events": events, "inventory": inventory}


def shop_arrow() -> dict[str, pa.Table]:
    """The planted shop as Arrow tables with the warehouse schema."""
    out = {}
    for name, rows in shop_rows().items():
        schema = TABLES[name].to_pyarrow()
        out[name] = pa.Table.from_pylist(rows, schema=schema)
    return out


def load_shop(con: ibis.BaseBackend, prefix: str) -> dict[str, ibis.Table]:
    """Create the planted shop's tables on ``con`` (names prefixed) and return them by warehouse name."""
    return {name: con.create_table(f"{prefix}{name}", table, overwrite=True) for name, table in shop_arrow().items()}


def fill_warehouse(runtime: Runtime) -> None:
    """Put the planted shop into the (empty) warehouse; profiles: m00..m19 champions, the rest hibernating."""
    with runtime.warehouse() as warehouse:
        warehouse.ensure_schema()
        for name, table in shop_arrow().items():
            warehouse.insert_new(name, table)
        segments = ["champions" if n < 20 else "hibernating" for n in range(len(MEMBERS))]
        warehouse.con.create_table("profiles", pa.table({"member_key": MEMBERS, "segment": segments}), overwrite=True)


@pytest.fixture(scope="module")
def shop_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A data directory whose warehouse holds the planted shop (no operational store needed)."""
    runtime = Runtime(make_settings(tmp_path_factory.mktemp("recs-shop") / "home"))
    runtime.settings.home.mkdir(parents=True)
    fill_warehouse(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def shop_version(shop_runtime: Runtime) -> Path:
    """The planted shop trained with cosine item-kNN as of day 40."""
    return train_version(shop_runtime, "itemknn", {"similarity": "cosine"}, as_of=AS_OF)


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
