"""Interactions from the warehouse: planted expectations, the raw online-retail CSV, and both engines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import numpy as np
import polars as pl
import pytest
from sqlalchemy import select

from patron.members.models import MemberIdentity
from patron.recs.base import Interactions
from patron.recs.interactions import InteractionConfig, build_interactions, build_purchases, build_sessions
from patron.runtime import Runtime
from tests.conftest import shared_data
from tests.recs._serving_fixtures import AS_OF, duck, load_shop, postgres

__all__ = ["duck", "postgres"]


def weights_of(data: Interactions) -> dict[tuple[str, str], float]:
    coo = data.matrix.tocoo()
    return {
        (str(data.user_ids[u]), str(data.item_ids[i])): float(w)
        for u, i, w in zip(coo.row, coo.col, coo.data, strict=True)
    }


@pytest.fixture
def shop(duck: ibis.BaseBackend) -> dict[str, ibis.Table]:
    return load_shop(duck, "")


def test_weights_returns_cancellations_and_purchase_events(shop: dict[str, ibis.Table]) -> None:
    data, catalog = build_interactions(shop, AS_OF)
    w = weights_of(data)
    assert data.n_items == 30 and catalog.item_ids.tolist() == sorted(catalog.item_ids.tolist())
    assert data.n_users == 40 and data.matrix.nnz == 161
    assert w[("m00", "c00")] == 8.0  # two orders x purchase weight 4
    assert w[("m00", "s00")] == 4.0
    assert ("m00", "s05") not in w  # bought and returned: -4, dropped
    assert w[("m00", "b00")] == 1.0 and w[("m00", "b01")] == 3.0  # view, cart
    assert ("m01", "c09") not in w  # cancelled order
    assert w[("m02", "c02")] == 8.0  # the purchase event repeats an order: not counted twice
    assert w[("m03", "b07")] == 4.0  # a purchase event without an order counts
    assert list(catalog.category[:1]) == ["books"] and catalog.price[0] == 10.0


def test_time_decay_and_lookback(shop: dict[str, ibis.Table]) -> None:
    decayed = weights_of(build_interactions(shop, AS_OF, InteractionConfig(half_life_days=10))[0])
    # c00 bought on days 1 and 20, 39 and 20 days before the as-of day 40
    assert decayed[("m00", "c00")] == pytest.approx(4 * 0.5**3.9 + 4 * 0.5**2.0, rel=1e-6)
    assert decayed[("m00", "b01")] == pytest.approx(3 * 0.5**1.4, rel=1e-6)
    recent = weights_of(build_interactions(shop, AS_OF, InteractionConfig(lookback_days=25))[0])
    assert recent[("m00", "c00")] == 4.0  # only the day-20 order
    assert ("m00", "s00") not in recent  # day 5 is outside the window


def test_minimum_counts_and_weights(shop: dict[str, ibis.Table]) -> None:
    only_m03 = build_interactions(shop, AS_OF, InteractionConfig(min_user_items=5))[0]
    assert only_m03.user_ids.tolist() == ["m03"]
    books = build_interactions(shop, AS_OF, InteractionConfig(min_item_users=5))[0]
    assert {i for _, i in weights_of(books)} == {f"b{n:02d}" for n in range(10)}
    assert books.n_items == 30  # cold items stay in the universe
    views_only = build_interactions(shop, AS_OF, InteractionConfig(weights={"view": 1.0, "purchase": 2.0}))[0]
    assert weights_of(views_only)[("m00", "c00")] == 4.0 and ("m00", "b01") not in weights_of(views_only)
    with pytest.raises(ValueError, match="purchase weight"):
        InteractionConfig(weights={"view": 1.0})


def test_purchases_count_occasions(shop: dict[str, ibis.Table]) -> None:
    bought = weights_of(build_purchases(shop, AS_OF))
    assert bought[("m00", "c00")] == 2.0 and bought[("m00", "s00")] == 1.0
    assert ("m00", "s05") not in bought and ("m01", "c09") not in bought
    assert bought[("m02", "c02")] == 2.0 and bought[("m03", "b07")] == 1.0


def test_sessions(shop: dict[str, ibis.Table]) -> None:
    sessions = build_sessions(shop, AS_OF)
    ids = sessions.user_ids.tolist()
    assert len(ids) == 1 + 40 * 2 + 2  # sess-1; each member's view and cart a day apart; two purchase events
    row = ids.index("sess-1")
    assert sessions.item_ids[sessions.items[sessions.users == row]].tolist() == ["b01", "b02"]
    assert "member:m00:1" in ids and "member:m00:2" in ids
    assert sessions.matrix.nnz == len(sessions.users)


def _engine_result(tables: dict[str, ibis.Table]) -> tuple[dict[Any, float], dict[Any, float], list[str]]:
    config = InteractionConfig(half_life_days=7)
    data = build_interactions(tables, AS_OF, config)[0]
    return weights_of(data), weights_of(build_purchases(tables, AS_OF)), build_sessions(tables, AS_OF).user_ids.tolist()


@pytest.mark.postgres
def test_planted_shop_equal_on_duckdb_and_postgres(duck: ibis.BaseBackend, postgres: ibis.BaseBackend) -> None:
    try:
        on_pg = _engine_result(load_shop(postgres, "recs_ix_"))
    finally:
        for name in ("products", "orders", "order_lines", "events", "inventory"):
            postgres.drop_table(f"recs_ix_{name}", force=True)
    on_duck = _engine_result(load_shop(duck, ""))
    assert on_pg[0].keys() == on_duck[0].keys()
    for key, value in on_duck[0].items():
        assert on_pg[0][key] == pytest.approx(value, rel=1e-9)
    assert on_pg[1:] == on_duck[1:]


# ----------------------------------------------------------------- online retail
RETAIL_AS_OF = datetime(2011, 12, 10)


def polars_interactions(half_life_days: float) -> dict[tuple[str, str], float]:
    """Member x product weights straight from the raw CSV: completed invoices' valid lines, 4 each, decayed."""
    raw = pl.read_csv(
        shared_data("online_retail/online_retail.csv.gz"),
        schema_overrides={"CustomerID": pl.String, "InvoiceNo": pl.String, "StockCode": pl.String},
    )
    raw = raw.with_columns(pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"))
    invoice_time = raw.group_by("InvoiceNo").agg(pl.col("InvoiceDate").min().alias("at"))
    lines = raw.filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") >= 0)
        & pl.col("StockCode").is_not_null()
    ).join(invoice_time, on="InvoiceNo")
    age_days = (pl.lit(RETAIL_AS_OF) - pl.col("at")).dt.total_seconds() / 86400.0
    weighted = lines.with_columns((4.0 * pl.lit(0.5).pow(age_days / half_life_days)).alias("w"))
    summed = weighted.group_by("CustomerID", "StockCode").agg(pl.col("w").sum()).filter(pl.col("w") > 0)
    customer = summed["CustomerID"].str.replace(r"\.0+$", "")
    return {
        (c, "online-retail:" + s): w
        for c, s, w in zip(customer.to_list(), summed["StockCode"].to_list(), summed["w"].to_list(), strict=True)
    }


@pytest.mark.slow
def test_online_retail_matches_an_independent_polars_computation(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        tables = {n: warehouse.table(n) for n in ("orders", "order_lines", "products", "events")}
        data, catalog = build_interactions(tables, RETAIL_AS_OF, InteractionConfig(half_life_days=30))
    with retail.store.session() as sess:
        source_id = dict(sess.execute(select(MemberIdentity.member_key, MemberIdentity.source_id)).all())
    ours = {(source_id[m], i): w for (m, i), w in weights_of(data).items()}
    expected = polars_interactions(30.0)
    assert len(ours) == len(expected) > 200_000
    assert ours.keys() == expected.keys()
    keys = list(expected)
    np.testing.assert_allclose([ours[k] for k in keys], [expected[k] for k in keys], rtol=1e-5)
    assert data.n_users == len({m for m, _ in expected})
    assert len(catalog.item_ids) >= len({i for _, i in expected})


COLUMNS = {
    "orders": ("order_key", "member_key", "ordered_at", "status"),
    "order_lines": ("order_key", "product_key", "returned"),
    "products": ("product_key", "title", "category", "brand", "price"),
}


@pytest.mark.slow
@pytest.mark.postgres
def test_online_retail_equal_on_duckdb_and_postgres(retail: Runtime, postgres: ibis.BaseBackend) -> None:
    names = ("orders", "order_lines", "products")
    config = InteractionConfig(half_life_days=30, lookback_days=120)
    with retail.warehouse(read_only=True) as warehouse:
        on_duck = build_interactions({n: warehouse.table(n) for n in names}, RETAIL_AS_OF, config)[0]
        try:
            for n in names:
                rows = warehouse.table(n).select(*COLUMNS[n]).to_pyarrow()  # only what interactions read
                postgres.create_table(f"recs_wh_{n}", rows, overwrite=True)
            on_pg = build_interactions({n: postgres.table(f"recs_wh_{n}") for n in names}, RETAIL_AS_OF, config)[0]
        finally:
            for n in names:
                postgres.drop_table(f"recs_wh_{n}", force=True)
    assert on_pg.user_ids.tolist() == on_duck.user_ids.tolist()
    assert on_pg.item_ids.tolist() == on_duck.item_ids.tolist()
    assert (on_pg.matrix != on_duck.matrix).nnz == 0 or np.allclose(
        on_pg.matrix.toarray(), on_duck.matrix.toarray(), rtol=1e-6
    )
