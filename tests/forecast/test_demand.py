"""Daily demand from the warehouse tables: a hand-made shop against a plain-Python count, on both engines."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import numpy as np
import pytest

from patron.errors import ValidationError
from patron.forecast.demand import UNCATEGORISED, daily_demand, demand_panel, demand_panels
from tests.forecast.conftest import at, warehouse_rows

START, END = date(2024, 3, 1), date(2024, 3, 5)

PRODUCTS = [
    {"product_key": "s:P1", "source": "s", "title": "Tea", "category": "drinks"},
    {"product_key": "s:P2", "source": "s", "title": "Coffee", "category": "drinks"},
    {"product_key": "s:P3", "source": "s", "title": "Mug", "category": "kitchen"},
    {"product_key": "s:P4", "source": "s", "title": "Gift card", "category": None},
]
ORDERS = [
    {"order_key": "O1", "ordered_at": at("2024-03-01", "10:00"), "status": "completed"},
    {"order_key": "O2", "ordered_at": at("2024-03-01", "23:59:59"), "status": "completed"},
    {"order_key": "O3", "ordered_at": at("2024-03-02"), "status": "cancelled"},
    {"order_key": "O4", "ordered_at": at("2024-03-03", "00:00"), "status": "completed"},
    {"order_key": "O5", "ordered_at": at("2024-02-29", "23:00"), "status": "completed"},  # before the period
    {"order_key": "O6", "ordered_at": at("2024-03-05", "00:00"), "status": "completed"},  # the end is exclusive
    {"order_key": "O7", "ordered_at": at("2024-03-04"), "status": "completed"},
]
LINES = [
    {"order_key": "O1", "line_no": 1, "product_key": "s:P1", "quantity": 2, "returned": False},
    {"order_key": "O1", "line_no": 2, "product_key": "s:P2", "quantity": 1, "returned": True},  # still demand
    {"order_key": "O2", "line_no": 1, "product_key": "s:P1", "quantity": 3, "returned": False},
    {"order_key": "O2", "line_no": 2, "product_key": "s:P3", "quantity": 1, "returned": False},
    {"order_key": "O3", "line_no": 1, "product_key": "s:P1", "quantity": 5, "returned": False},
    {"order_key": "O4", "line_no": 1, "product_key": "s:P4", "quantity": 2, "returned": False},
    {"order_key": "O4", "line_no": 2, "product_key": "s:P9", "quantity": 1, "returned": False},  # not in products
    {"order_key": "O4", "line_no": 3, "product_key": None, "quantity": 4, "returned": False},
    {"order_key": "O5", "line_no": 1, "product_key": "s:P3", "quantity": 7, "returned": False},
    {"order_key": "O6", "line_no": 1, "product_key": "s:P3", "quantity": 7, "returned": False},
    {"order_key": "O7", "line_no": 1, "product_key": "s:P2", "quantity": 0, "returned": False},
    {"order_key": "O7", "line_no": 2, "product_key": "s:P2", "quantity": 4, "returned": False},
]


def _complete(rows: list[dict[str, Any]], **defaults: Any) -> list[dict[str, Any]]:
    return [{**defaults, **row} for row in rows]


def _tables(con: ibis.BaseBackend, prefix: str = "") -> tuple[Any, Any, Any]:
    orders = _complete(ORDERS, source="s", amount=1.0, discount=0.0)
    lines = _complete(LINES, unit_price=1.0, amount=1.0, discount=0.0)
    data = {"orders": orders, "order_lines": lines, "products": PRODUCTS}
    for name, rows in data.items():
        con.create_table(f"{prefix}{name}", warehouse_rows(name, rows), overwrite=True)
    return con.table(f"{prefix}orders"), con.table(f"{prefix}order_lines"), con.table(f"{prefix}products")


def _by_hand(level: str) -> dict[tuple[str, date], int]:
    """Units per key and day, zero-filled, counted in plain Python from the rows above."""
    orders = {o["order_key"]: o for o in ORDERS}
    category = {p["product_key"]: p["category"] for p in PRODUCTS}
    units: dict[tuple[str, date], int] = defaultdict(int)
    for line in LINES:
        order = orders[line["order_key"]]
        day = order["ordered_at"].date()
        if order["status"] != "completed" or not START <= day < END:
            continue
        if line["product_key"] is None or line["quantity"] <= 0:
            continue
        key = line["product_key"] if level == "product" else (category.get(line["product_key"]) or UNCATEGORISED)
        units[(key, day)] += line["quantity"]
    keys = {key for key, _ in units}
    days = [START + timedelta(days=i) for i in range((END - START).days)]
    return {(key, day): units.get((key, day), 0) for key in keys for day in days}


def _as_dict(table: Any) -> dict[tuple[str, date], int]:
    rows = table.to_pyarrow().to_pylist()
    return {(row["key"], row["day"]): row["units"] for row in rows}


@pytest.mark.parametrize("level", ["product", "category"])
def test_daily_demand_equals_a_count_by_hand(duck: ibis.BaseBackend, level: str) -> None:
    orders, lines, products = _tables(duck)

    result = _as_dict(daily_demand(orders, lines, products, level=level, start=START, end=END))  # type: ignore[arg-type]

    assert result == _by_hand(level)


def test_the_rules_of_the_count(duck: ibis.BaseBackend) -> None:
    orders, lines, products = _tables(duck)

    product = _as_dict(daily_demand(orders, lines, products, level="product", start=START, end=END))
    category = _as_dict(daily_demand(orders, lines, products, level="category", start=START, end=END))

    # returned line counted, cancelled order and zero quantity not; a line at 23:59:59 stays on its day
    assert [product[("s:P1", START + timedelta(days=i))] for i in range(4)] == [5, 0, 0, 0]
    assert product[("s:P2", date(2024, 3, 1))] == 1 and product[("s:P2", date(2024, 3, 4))] == 4
    assert {key for key, _ in product} == {"s:P1", "s:P2", "s:P3", "s:P4", "s:P9"}  # no row for the null product
    assert category[(UNCATEGORISED, date(2024, 3, 3))] == 3  # no category (P4) and unknown product (P9)
    assert category[("drinks", date(2024, 3, 1))] == 6
    assert len(product) == 5 * 4 and len(category) == 3 * 4


def test_panels_from_one_query_equal_the_zero_filled_tables(duck: ibis.BaseBackend) -> None:
    orders, lines, products = _tables(duck)

    panels = demand_panels(orders, lines, products, start=START, end=END)

    for level in ("product", "category"):
        reference = demand_panel(orders, lines, products, level=level, start=START, end=END)  # type: ignore[arg-type]
        assert panels[level].keys == reference.keys  # type: ignore[index]
        np.testing.assert_array_equal(panels[level].units, reference.units)  # type: ignore[index]
        expected = _by_hand(level)
        for row, key in enumerate(reference.keys):
            assert reference.units[row].tolist() == [expected[(key, START + timedelta(days=i))] for i in range(4)]


def test_a_period_that_ends_before_it_starts_is_refused(duck: ibis.BaseBackend) -> None:
    orders, lines, products = _tables(duck)

    with pytest.raises(ValidationError) as caught:
        daily_demand(orders, lines, products, level="product", start=END, end=START)

    assert caught.value.field == "end"


@pytest.mark.postgres
@pytest.mark.parametrize("level", ["product", "category"])
def test_engines_agree_on_the_demand_table(duck: ibis.BaseBackend, postgres: ibis.BaseBackend, level: str) -> None:
    prefix = f"fc_{datetime.now():%H%M%S%f}_"
    on_duck = _tables(duck)
    on_pg = _tables(postgres, prefix)
    try:
        duck_rows = _as_dict(daily_demand(*on_duck, level=level, start=START, end=END))  # type: ignore[arg-type]
        pg_rows = _as_dict(daily_demand(*on_pg, level=level, start=START, end=END))  # type: ignore[arg-type]
        pg_panels = demand_panels(*on_pg, start=START, end=END)
    finally:
        for name in ("orders", "order_lines", "products"):
            postgres.drop_table(f"{prefix}{name}", force=True)

    assert pg_rows == duck_rows == _by_hand(level)
    panel = pg_panels[level]  # type: ignore[index]
    assert {
        (k, START + timedelta(days=i)): int(panel.units[r, i]) for r, k in enumerate(panel.keys) for i in range(4)
    } == (duck_rows)
