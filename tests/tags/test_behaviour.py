"""Behaviour tags against a plain-Python reading of the rules in docs/tags.md, on two engines."""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import ibis
import polars as pl
import pyarrow as pa
import pytest

from patron.demo import generate_shop
from patron.errors import ValidationError
from patron.runtime import Runtime
from patron.tags.behaviour import BEHAVIOUR_COLUMNS, behaviour_tags
from patron.warehouse.schema import TABLES
from tests.conftest import PG_URL

AS_OF = datetime(2024, 3, 1)
Row = dict[str, Any]

# -- a hand-made shop (2024-01-01 is a Monday) --------------------------------------------------------------------

PRODUCTS = [  # books median 20; toys median 100 (the free P8 is left out); no category: median 10
    ("P1", "books", 10.0), ("P2", "books", 20.0), ("P3", "books", 30.0), ("P4", "toys", 50.0),
    ("P5", "toys", 150.0), ("P6", None, 8.0), ("P7", None, 12.0), ("P8", "toys", 0.0),
]  # fmt: skip
ORDERS = [  # order, member, ordered_at, status, channel, amount, discount
    ("a1", "a", datetime(2024, 1, 1, 10, 15), "completed", "app", 110.0, 0.0),
    ("a2", "a", datetime(2024, 1, 8, 10, 40), "completed", "app", 15.0, 5.0),
    ("a3", "a", datetime(2024, 1, 15, 10, 5), "completed", "web", 150.0, 0.0),
    ("a4", "a", datetime(2024, 1, 16, 18, 0), "completed", "app", 12.0, 0.0),
    ("a5", "a", AS_OF, "completed", "web", 1500.0, 0.0),  # at as-of: not before it
    ("a6", "a", datetime(2024, 1, 20), "cancelled", "web", 750.0, 0.0),
    ("b1", "b", datetime(2024, 1, 3, 8), "completed", None, 20.0, 10.0),
    ("b2", "b", datetime(2024, 1, 10, 8), "completed", None, 30.0, 10.0),
    *((f"c{i}", "c", datetime(2024, 1, 22 + i, 9), "completed", ch, 0.0, 0.0)
      for i, ch in enumerate(["store", "web", "store", "web", "app"])),
    *((f"d{i}", "d", at, "completed", "app", 10.0, 1.0 if i == 0 else 0.0)
      for i, at in enumerate([datetime(2024, 1, 3, 20), datetime(2024, 1, 10, 21), datetime(2024, 1, 5, 20),
                              datetime(2024, 1, 12, 21), datetime(2024, 1, 7, 22)])),
    ("h1", "h", datetime(2024, 2, 5, 12), "completed", "store", 12.0, 0.1),
    ("h2", "h", datetime(2024, 2, 12, 13), "completed", "store", 12.0, 0.1),
    ("h3", "h", datetime(2024, 2, 14, 14), "completed", "store", 12.0, 0.0),
    ("g1", None, datetime(2024, 1, 2), "completed", "app", 99.0, 0.0),  # a guest
    ("f1", "f", datetime(2024, 1, 2), "cancelled", "app", 99.0, 0.0),
    ("l1", "l", datetime(2024, 3, 2), "completed", "app", 99.0, 0.0),  # after as-of
]  # fmt: skip
LINES = [  # order, product, quantity, unit price, amount, discount, returned
    ("a1", "P3", 2, 30.0, 60.0, 0.0, False), ("a1", "P4", 1, 50.0, 50.0, 0.0, True),
    ("a2", "P2", 1, 20.0, 15.0, 5.0, False), ("a3", "P5", 1, 150.0, 150.0, 0.0, False),
    ("a4", "P6", 1, 12.0, 12.0, 0.0, False), ("a5", "P5", 10, 150.0, 1500.0, 0.0, False),
    ("a6", "P5", 5, 150.0, 750.0, 0.0, False),
    ("b1", "P1", 3, 10.0, 20.0, 10.0, False), ("b1", "P2", 1, 0.0, 0.0, 0.0, False),
    ("b2", "P9", 1, 40.0, 30.0, 10.0, False),
    ("c0", "P2", 1, 20.0, 20.0, 0.0, False), ("c1", "P8", 1, 20.0, 20.0, 0.0, False),
    *((f"d{i}", "P1", 1, 10.0, 10.0 - (1.0 if i == 0 else 0.0), 1.0 if i == 0 else 0.0, True) for i in range(5)),
    ("h1", "P7", 1, 12.0, 12.0, 0.1, False), ("h2", "P7", 1, 12.0, 12.0, 0.1, False),
    ("h3", "P7", 1, 12.0, 12.0, 0.0, False),
    ("g1", "P5", 1, 99.0, 99.0, 0.0, False), ("f1", "P5", 1, 99.0, 99.0, 0.0, False),
    ("l1", "P5", 1, 99.0, 99.0, 0.0, False),
]  # fmt: skip


def hand_made() -> tuple[list[Row], list[Row], list[Row]]:
    orders = [
        dict(zip(["order_key", "member_key", "ordered_at", "status", "channel", "amount", "discount"], r, strict=True))
        for r in ORDERS
    ]
    lines = [
        {"line_no": n, **dict(zip(["order_key", "product_key", "quantity", "unit_price", "amount", "discount",
                                   "returned"], r, strict=True))}
        for n, r in enumerate(LINES, start=1)
    ]  # fmt: skip
    products = [dict(zip(["product_key", "category", "price"], r, strict=True)) for r in PRODUCTS]
    return orders, lines, products


def demo(members: int, seed: int) -> tuple[list[Row], list[Row], list[Row]]:
    shop = generate_shop(members, seed)
    frames = {name: shop.frame(name) for name in ("orders", "order_lines", "products")}
    orders = frames["orders"].rename({"member_source_id": "member_key"})  # type: ignore[union-attr]
    return orders.to_dicts(), frames["order_lines"].to_dicts(), frames["products"].to_dicts()  # type: ignore[union-attr]


def load(con: ibis.BaseBackend, prefix: str, data: tuple[list[Row], list[Row], list[Row]]) -> list[Any]:
    """The rows as warehouse tables named ``<prefix>orders`` ... on ``con``."""
    tables = []
    for name, rows in zip(("orders", "order_lines", "products"), data, strict=True):
        schema = TABLES[name].to_pyarrow()
        filled = [{"source": "test", **row} for row in rows]
        arrow = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in filled], schema=schema)
        tables.append(con.create_table(f"{prefix}{name}", arrow, overwrite=True))
    return tables


# -- the rules, read independently ----------------------------------------------------------------------------------


def mode(values: list[Any]) -> tuple[Any, int]:
    """The most frequent value (ties: the smallest) and its count."""
    counts = Counter(values)
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best), best


def reference(orders: list[Row], lines: list[Row], products: list[Row], as_of: datetime) -> dict[str, Row]:
    done = {
        o["order_key"]: o
        for o in orders
        if o["status"] == "completed" and o["member_key"] is not None and o["ordered_at"] < as_of
    }
    category = {p["product_key"]: p["category"] for p in products}
    priced: dict[Any, list[float]] = defaultdict(list)
    for p in products:
        if p["price"] is not None and p["price"] > 0:
            priced[p["category"]].append(p["price"])
    median = {c: statistics.median(v) for c, v in priced.items()}
    orders_of: dict[str, list[Row]] = defaultdict(list)
    for o in done.values():
        orders_of[o["member_key"]].append(o)
    lines_of: dict[str, list[Row]] = defaultdict(list)
    for line in lines:
        if line["order_key"] in done and not line["returned"]:
            lines_of[done[line["order_key"]]["member_key"]].append(line)
    return {m: tags_of(mine, lines_of[m], category, median) for m, mine in orders_of.items()}


def tags_of(orders: list[Row], lines: list[Row], category: dict[str, Any], median: dict[Any, float]) -> Row:
    spend: dict[Any, float] = defaultdict(float)
    log_sum = units = 0.0
    for line in lines:
        known = line["product_key"] in category
        spend[category[line["product_key"]] if known else None] += line["amount"]
        reference_price = median.get(category[line["product_key"]]) if known else None
        if reference_price is not None and line["unit_price"] > 0 and line["quantity"] > 0:
            log_sum += line["quantity"] * math.log(line["unit_price"] / reference_price)
            units += line["quantity"]
    named = sorted((-round(s * 100), c) for c, s in spend.items() if c is not None and s > 0)
    top = named[0][1] if named else None
    index = math.exp(log_sum / units) if units else None
    n = len(orders)
    share = sum(1 for o in orders if o["discount"] > 0) / n
    gross = sum(o["amount"] + o["discount"] for o in orders)
    rate = sum(o["discount"] for o in orders) / gross if gross > 0 else 0.0
    weekday, on_weekday = mode([o["ordered_at"].weekday() for o in orders])
    hour, at_hour = mode([o["ordered_at"].hour for o in orders])
    channels = [o["channel"] for o in orders if o["channel"] is not None]
    return {
        "top_category": top,
        "top_category_share": spend[top] / sum(spend.values()) if top is not None else None,
        "price_index": index,
        "price_band": None if index is None else "budget" if index < 0.8 else "premium" if index > 1.25 else "mid",
        "discounted_order_share": share,
        "discount_rate": rate,
        "discount_sensitivity": "high" if share >= 0.5 and rate >= 0.05 else "low" if share < 0.2 else "medium",
        "preferred_weekday": weekday if n >= 3 and on_weekday / n >= 0.4 else None,
        "preferred_hour": hour if n >= 3 and at_hour / n >= 0.4 else None,
        "main_channel": mode(channels)[0] if channels else None,
    }


def computed(tables: list[Any]) -> dict[str, Row]:
    rows = behaviour_tags(*tables, AS_OF).to_pyarrow().to_pylist()
    return {row.pop("member_key"): row for row in rows}


def assert_equal_tags(ours: dict[str, Row], theirs: dict[str, Row]) -> None:
    assert ours.keys() == theirs.keys()
    for member, expected in theirs.items():
        for column, value in expected.items():
            got = ours[member][column]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (member, column)
            else:
                assert got == value, (member, column)


# -- engines (as in tests/analytics/conftest.py) ---------------------------------------------------------------------


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


# -- tests ----------------------------------------------------------------------------------------------------------


def test_columns_and_hand_made_cases(duck: ibis.BaseBackend) -> None:
    tables = load(duck, "", hand_made())

    ours = computed(tables)

    assert behaviour_tags(*tables, AS_OF).columns == BEHAVIOUR_COLUMNS
    assert set(ours) == {"a", "b", "c", "d", "h"}  # no guest, no cancelled-only, nothing at or after as-of
    a, b, c, d, h = (ours[m] for m in "abcdh")
    # a: toys 150 of 237 kept (the returned toy and the order at as-of do not count); Monday at ten, 3 of 4
    assert (a["top_category"], a["top_category_share"]) == ("toys", pytest.approx(150 / 237))
    assert a["price_index"] == pytest.approx((1.5**3 * 1.0 * 1.2) ** (1 / 5))
    assert (a["price_band"], a["discount_sensitivity"], a["main_channel"]) == ("premium", "medium", "app")
    assert (a["preferred_weekday"], a["preferred_hour"]) == (0, 10)
    assert a["discount_rate"] == pytest.approx(5 / 292)
    # b: books 20 of 50 (the rest bought a product outside the catalogue; a free gift is not priced); two
    # orders: no preference
    assert (b["top_category"], b["top_category_share"], b["price_band"]) == ("books", pytest.approx(0.4), "budget")
    assert (b["discount_sensitivity"], b["preferred_weekday"], b["main_channel"]) == ("high", None, None)
    # c: books and toys tie at 20 -> books; five weekdays (no preference) at nine; store and web tie -> store
    assert (c["top_category"], c["preferred_weekday"], c["preferred_hour"], c["main_channel"]) == (
        "books", None, 9, "store"
    )  # fmt: skip
    assert c["price_index"] == pytest.approx(math.sqrt(1.0 * 0.2))
    # d: everything returned; Wednesday and Friday tie at 2 of 5 (40 %) -> Wednesday; 20 and 21 tie -> 20
    assert (d["top_category"], d["price_band"], d["preferred_weekday"], d["preferred_hour"]) == (None, None, 2, 20)
    assert (d["discounted_order_share"], d["discount_sensitivity"]) == (0.2, "medium")
    # h: only uncategorised spend, priced against the uncategorised median 10; small discounts on 2 of 3
    assert (h["top_category"], h["price_band"], h["discount_sensitivity"], h["preferred_weekday"]) == (
        None, "mid", "medium", 0
    )  # fmt: skip
    assert_equal_tags(ours, reference(*hand_made(), AS_OF))


@pytest.fixture(scope="module")
def shop() -> tuple[list[Row], list[Row], list[Row]]:
    return demo(400, 17)


def test_demo_shop_equals_the_plain_python_reading(duck: ibis.BaseBackend, shop: Any) -> None:
    as_of = datetime(2025, 6, 1)  # mid-period: some members have not bought yet, some orders come later

    rows = behaviour_tags(*load(duck, "", shop), as_of).to_pyarrow().to_pylist()
    ours = {row.pop("member_key"): row for row in rows}

    theirs = reference(*shop, as_of)
    assert len(ours) > 200
    assert_equal_tags(ours, theirs)
    values = pl.DataFrame(list(ours.values()))
    assert set(values["price_band"].drop_nulls()) == {"budget", "mid", "premium"}
    assert set(values["discount_sensitivity"]) == {"low", "medium", "high"}
    assert values["preferred_weekday"].drop_nulls().is_between(0, 6).all()
    assert values["preferred_hour"].drop_nulls().is_between(0, 23).all()


@pytest.fixture
def engines(duck: ibis.BaseBackend, postgres: ibis.BaseBackend) -> Iterator[tuple[ibis.BaseBackend, ...]]:
    yield duck, postgres
    for name in ("orders", "order_lines", "products"):
        postgres.drop_table(f"bt_{name}", force=True)


@pytest.mark.postgres
def test_duckdb_and_postgres_agree(engines: tuple[ibis.BaseBackend, ...], shop: Any) -> None:
    duck, postgres = engines
    as_of = datetime(2025, 6, 1)

    on_duck = behaviour_tags(*load(duck, "bt_", shop), as_of).to_pyarrow().to_pylist()
    on_postgres = behaviour_tags(*load(postgres, "bt_", shop), as_of).to_pyarrow().to_pylist()

    assert_equal_tags(
        {row.pop("member_key"): row for row in on_postgres}, {row.pop("member_key"): row for row in on_duck}
    )


def test_missing_columns_are_named(duck: ibis.BaseBackend) -> None:
    orders, lines, products = load(duck, "", hand_made())

    with pytest.raises(ValidationError, match="channel") as raised:
        behaviour_tags(orders.drop("channel"), lines, products, AS_OF)

    assert raised.value.field == "orders"


@pytest.mark.slow
def test_online_retail_tags_every_customer(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        tables = [warehouse.table(name) for name in ("orders", "order_lines", "products")]
        tags = pl.from_arrow(behaviour_tags(*tables, datetime(2011, 12, 10)).to_pyarrow())
    assert isinstance(tags, pl.DataFrame)

    assert tags.height == 4_339  # the customers of the published RFM reference
    assert tags["main_channel"].unique().to_list() == ["online"]
    assert tags["top_category"].null_count() == tags.height  # the file has no categories
    # Without categories every product is priced against the median of the whole catalogue.
    assert set(tags["price_band"].drop_nulls()) == {"budget", "mid", "premium"}
    assert tags["discount_sensitivity"].unique().to_list() == ["low"]  # the file has no discounts
    assert tags["preferred_weekday"].drop_nulls().is_in([0, 1, 2, 3, 4, 6]).all()  # the shop sent nothing on Saturdays
