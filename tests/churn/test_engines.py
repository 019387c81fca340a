"""The churn features, labels and the whole step give the same numbers on DuckDB and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import ibis
import pytest

from patron.churn import cached_order_facts, churn_labels, churn_step, member_features
from tests.churn.conftest import CUT_OFF, LINES, ORDERS, PRODUCTS, load
from tests.churn.test_features import MANY_CATEGORIES
from tests.churn.test_step import AS_OF, simulated_shop

pytestmark = pytest.mark.postgres
PREFIX = "churn_test_"


@pytest.fixture
def pg(postgres: ibis.BaseBackend) -> Iterator[ibis.BaseBackend]:
    yield postgres
    for name in ("orders", "order_lines", "products"):
        postgres.drop_table(f"{PREFIX}{name}", force=True)


def _rows(
    con: ibis.BaseBackend,
    orders: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    cut_off: datetime,
    products: list[dict[str, Any]] = PRODUCTS,
) -> Any:
    tables = load(con, orders, lines, products, prefix=PREFIX)
    with cached_order_facts(*tables) as facts:
        features = member_features(facts, cut_off).order_by("member_key").to_pyarrow().to_pylist()
        labels = churn_labels(facts, cut_off, 90).order_by("member_key").to_pyarrow().to_pylist()
    return features, labels


def _assert_rows_equal(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert [r["member_key"] for r in ours] == [r["member_key"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        for name, value in a.items():
            other = b[name]
            if name == "member_key":
                continue
            if isinstance(value, float) and math.isnan(value):
                value = None
            if isinstance(other, float) and math.isnan(other):
                other = None
            assert other == value if value is None else other == pytest.approx(value, rel=1e-12), (
                a["member_key"],
                name,
            )


@pytest.mark.parametrize("shop", ["hand-made", "many-categories", "simulated"])
def test_features_and_labels_equal_on_both_engines(duck: ibis.BaseBackend, pg: ibis.BaseBackend, shop: str) -> None:
    orders, lines = (ORDERS, LINES) if shop != "simulated" else simulated_shop(300, seed=5)
    cut_off = CUT_OFF if shop != "simulated" else AS_OF
    products = MANY_CATEGORIES if shop == "many-categories" else PRODUCTS

    duck_features, duck_labels = _rows(duck, orders, lines, cut_off, products)
    pg_features, pg_labels = _rows(pg, orders, lines, cut_off, products)

    assert len(duck_features) >= 3
    _assert_rows_equal(duck_features, pg_features)
    assert duck_labels == pg_labels


def test_the_whole_step_reports_the_same_on_both_engines(duck: ibis.BaseBackend, pg: ibis.BaseBackend) -> None:
    orders, lines = simulated_shop(800, seed=1)

    on_duck = churn_step(*load(duck, orders, lines, prefix=PREFIX), AS_OF)
    on_pg = churn_step(*load(pg, orders, lines, prefix=PREFIX), AS_OF)

    duck_report, pg_report = on_duck.report(), on_pg.report()
    assert duck_report["status"] == pg_report["status"] == "ok"
    for score, metrics in duck_report["metrics"].items():
        for name in ("auc", "precision_top_decile", "precision_at_100", "brier", "churn_rate"):
            want, got = metrics[name], pg_report["metrics"][score][name]
            assert got == want if want is None else got == pytest.approx(want, rel=1e-9), (score, name)
    assert on_pg.table.sort_by("member_key").equals(on_duck.table.sort_by("member_key"))
