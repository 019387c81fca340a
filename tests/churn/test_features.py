"""Churn features and labels against a plain-Python computation of the definitions, on a hand-made shop."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import ibis
import pytest

from patron.churn.facts import CATEGORY_BITS, order_facts
from patron.churn.features import FEATURES, TREND_DAYS, cached_order_facts, churn_labels, member_features
from patron.errors import ValidationError
from tests.churn.conftest import CUT_OFF, LINES, ORDERS, PRODUCTS, load

DAY = timedelta(days=1)


def expected_features(
    orders: list[dict[str, Any]], lines: list[dict[str, Any]], products: list[dict[str, Any]], cut_off: datetime
) -> dict[str, dict[str, float | None]]:
    """The documented definitions, one member at a time, in plain Python."""
    category = {p["product_key"]: p["category"] for p in products}
    lines_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        lines_of[line["order_key"]].append(line)
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in orders:
        if order["member_key"] is not None and order["ordered_at"] < cut_off:
            history[order["member_key"]].append(order)
    out = {}
    for member, placed in history.items():
        done = [o for o in placed if o["status"] == "completed"]
        if done:
            out[member] = _one_member(done, len(placed) - len(done), lines_of, category, cut_off)
    return out


def _one_member(
    done: list[dict[str, Any]],
    cancelled: int,
    lines_of: dict[str, list[dict[str, Any]]],
    category: dict[str, str | None],
    cut_off: datetime,
) -> dict[str, float | None]:
    def value(order: dict[str, Any]) -> float:
        return sum(line["amount"] for line in lines_of[order["order_key"]] if not line["returned"])

    days = sorted({o["ordered_at"].date() for o in done})
    first, last = min(o["ordered_at"] for o in done), max(o["ordered_at"] for o in done)
    recent = [o for o in done if o["ordered_at"] >= cut_off - TREND_DAYS * DAY]
    before = [o for o in done if cut_off - 2 * TREND_DAYS * DAY <= o["ordered_at"] < cut_off - TREND_DAYS * DAY]
    s1, s0 = sum(map(value, recent)), sum(map(value, before))
    bought = [line for o in done for line in lines_of[o["order_key"]]]
    recency = math.floor((cut_off - last) / DAY)
    mean_interval = (days[-1] - days[0]).days / (len(days) - 1) if len(days) > 1 else None
    gross = sum(o["amount"] + o["discount"] for o in done)
    return {
        "recency_days": recency,
        "tenure_days": math.floor((cut_off - first) / DAY),
        "orders": len(done),
        "purchase_days": len(days),
        "monetary": sum(map(value, done)),
        "avg_order_value": sum(map(value, done)) / len(done),
        "orders_90d": len(recent),
        "orders_trend": len(recent) - len(before),
        "spend_90d": s1,
        "spend_trend": (s1 - s0) / (s1 + s0) if s1 + s0 > 0 else 0.0,
        "mean_interval": mean_interval,
        "last_interval": (days[-1] - days[-2]).days if len(days) > 1 else None,
        "recency_ratio": recency / mean_interval if mean_interval else None,
        "categories": len({category[b["product_key"]] for b in bought if category.get(b["product_key"])}),
        "return_share": sum(b["returned"] for b in bought) / len(bought) if bought else 0.0,
        "discount_share": sum(o["discount"] for o in done) / gross if gross > 0 else 0.0,
        "cancel_share": cancelled / (len(done) + cancelled),
    }


def computed(
    con: ibis.BaseBackend,
    orders: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    products: list[dict[str, Any]] = PRODUCTS,
) -> dict[str, Any]:
    tables = load(con, orders, lines, products)
    with cached_order_facts(*tables) as facts:
        rows = member_features(facts, CUT_OFF).to_pyarrow().to_pylist()
    return {row.pop("member_key"): row for row in rows}


def assert_same(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert set(ours) == set(theirs)
    for member, expected in theirs.items():
        for name in FEATURES:
            want, got = expected[name], ours[member][name]
            assert (got is None or math.isnan(got)) if want is None else got == pytest.approx(want, rel=1e-12), (
                member,
                name,
            )


# Unsold products in 70 more categories: too many for one bit set, so the per-category table is used.
MANY_CATEGORIES = PRODUCTS + [{**PRODUCTS[0], "product_key": f"x{i}", "category": f"extra {i}"} for i in range(70)]


@pytest.mark.parametrize("products", [PRODUCTS, MANY_CATEGORIES], ids=["category-bits", "category-table"])
def test_features_equal_a_plain_python_computation(duck: ibis.BaseBackend, products: list[dict[str, Any]]) -> None:
    ours = computed(duck, ORDERS, LINES, products)

    assert_same(ours, expected_features(ORDERS, LINES, products, CUT_OFF))
    # Hand-checked figures of member a: o7 at the cut-off is out, o2 and o3 share a purchase day.
    a = ours["a"]
    assert (a["orders"], a["purchase_days"], a["recency_days"], a["tenure_days"]) == (5, 4, 0, 233)
    assert a["monetary"] == 270.0  # o2's returned 60 left out
    assert a["categories"] == 3  # shoes, bags, toys; books only in the cancelled o4
    assert a["mean_interval"] == pytest.approx(233 / 3) and a["last_interval"] == 56
    assert a["return_share"] == pytest.approx(1 / 6) and a["cancel_share"] == pytest.approx(1 / 6)
    assert a["discount_share"] == pytest.approx(15 / 345)
    assert ours["b"]["purchase_days"] == 1 and ours["b"]["mean_interval"] is None
    assert ours["e"]["monetary"] == 0.0  # an order without lines has no value
    assert "c" not in ours and "d" not in ours


def test_labels_at_the_cut_off(duck: ibis.BaseBackend) -> None:
    tables = load(duck, ORDERS, LINES)
    with cached_order_facts(*tables) as facts:
        labels = churn_labels(facts, CUT_OFF, 90).to_pyarrow().to_pylist()

    # a buys at the cut-off itself, b inside the horizon; e only cancels inside it and buys exactly at its end.
    assert {row["member_key"]: row["churned"] for row in labels} == {"a": 0, "b": 0, "e": 1}


def _random_late_orders(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    orders, lines = [], []
    for i in range(30):
        key = f"late{seed}-{i}"
        at = CUT_OFF + timedelta(seconds=rng.choice([0, 1, 3600, 86400 * rng.randint(1, 400)]))
        status = rng.choice(["completed", "completed", "cancelled"])
        member = rng.choice(["a", "b", "c", "d", "e", "new", None])
        amount = round(rng.uniform(1, 500), 2)
        orders.append(
            {
                **ORDERS[0],
                "order_key": key,
                "member_key": member,
                "ordered_at": at,
                "status": status,
                "amount": amount,
                "discount": round(rng.uniform(0, 20), 2),
            }
        )
        product = rng.choice(["p1", "p2", "p3", "p4", "p5"])
        lines.append(
            {**LINES[0], "order_key": key, "product_key": product, "amount": amount, "returned": rng.random() < 0.3}
        )
    return orders, lines


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_orders_at_or_after_the_cut_off_never_change_the_features(duck: ibis.BaseBackend, seed: int) -> None:
    before = computed(duck, ORDERS, LINES)
    extra_orders, extra_lines = _random_late_orders(seed)

    after = computed(duck, ORDERS + extra_orders, LINES + extra_lines)

    assert after.keys() == before.keys()
    for member in before:
        assert after[member] == pytest.approx(before[member], nan_ok=True)


def test_a_cut_off_must_be_a_midnight(duck: ibis.BaseBackend) -> None:
    tables = load(duck, ORDERS, LINES)
    with cached_order_facts(*tables) as facts, pytest.raises(ValidationError) as caught:
        member_features(facts, CUT_OFF + timedelta(hours=6))
    assert caught.value.field == "cut_off"


def test_the_category_path_follows_the_number_of_categories(duck: ibis.BaseBackend) -> None:
    few = order_facts(*load(duck, ORDERS, LINES))
    many = order_facts(*load(duck, ORDERS, LINES, MANY_CATEGORIES, prefix="many_"))

    assert few.categories == ("bags", "books", "shoes", "toys") and few.first_in_category is None
    assert len(MANY_CATEGORIES) - 1 > CATEGORY_BITS  # p4 has no category
    assert many.categories is None and many.first_in_category is not None
