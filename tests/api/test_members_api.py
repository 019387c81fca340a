"""Members, segments and KPIs over HTTP on online-retail, checked against independent figures.

The reference segment counts are those of ../shared/data/README.md; KPIs and
recent orders are recomputed here with polars straight from the source file.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from patron.runtime import Runtime
from tests.api.conftest import member_key_of
from tests.conftest import REFERENCE_SEGMENTS, shared_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analyst(clients: dict[str, TestClient]) -> TestClient:
    return clients["analyst"]


@pytest.fixture(scope="module")
def source_lines() -> pl.DataFrame:
    """The raw invoice lines, typed, with a cancellation flag."""
    raw = pl.read_csv(shared_data("online_retail/online_retail.csv.gz"), infer_schema=False)
    return raw.with_columns(
        pl.col("Quantity").cast(pl.Int64),
        pl.col("UnitPrice").cast(pl.Float64),
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        pl.col("CustomerID").str.replace(r"\.0$", ""),
        pl.col("InvoiceNo").str.starts_with("C").alias("cancelled"),
    )


@pytest.fixture(scope="module")
def completed_invoices(source_lines: pl.DataFrame) -> pl.DataFrame:
    """One row per completed invoice: not a cancellation, over its lines with quantity > 0 and price >= 0."""
    lines = source_lines.filter(~pl.col("cancelled") & (pl.col("Quantity") > 0) & (pl.col("UnitPrice") >= 0))
    return lines.group_by("InvoiceNo").agg(
        pl.col("InvoiceDate").min().alias("ordered_at"),
        (pl.col("Quantity") * pl.col("UnitPrice")).sum().alias("amount"),
        pl.col("CustomerID").drop_nulls().first().alias("customer"),
    )


def _members(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/members", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


# --- members --------------------------------------------------------------------------


def test_searching_a_source_customer_id_finds_exactly_that_member(analyst: TestClient, retail: Runtime) -> None:
    page = _members(analyst, q="12346")

    assert page["total"] == 1
    [member] = page["items"]
    assert member["member_key"] == member_key_of(retail, "12346")
    assert member["monetary"] == pytest.approx(77_183.60, abs=0.005)
    assert member["segment"] == "hibernating"
    assert member["frequency"] == 1


def test_searching_a_member_key_prefix_finds_that_member(analyst: TestClient, retail: Runtime) -> None:
    key = member_key_of(retail, "12346")

    page = _members(analyst, q=key[:12])

    assert key in [m["member_key"] for m in page["items"]]
    assert all(m["member_key"].startswith(key[:12]) for m in page["items"])


def test_filtering_by_segment_pages_without_overlap(analyst: TestClient) -> None:
    first = _members(analyst, segment="champions", page=1, page_size=50)
    second = _members(analyst, segment="champions", page=2, page_size=50)
    last = _members(analyst, segment="champions", page=13, page_size=50)
    beyond = _members(analyst, segment="champions", page=14, page_size=50)

    assert first["total"] == second["total"] == 633
    assert (first["page"], first["page_size"], second["page"]) == (1, 50, 2)
    assert len(first["items"]) == len(second["items"]) == 50
    assert len(last["items"]) == 633 - 12 * 50
    assert beyond["items"] == []
    keys_1 = {m["member_key"] for m in first["items"]}
    keys_2 = {m["member_key"] for m in second["items"]}
    assert len(keys_1) == 50 and not keys_1 & keys_2
    assert {m["segment"] for m in first["items"] + second["items"] + last["items"]} == {"champions"}


def test_members_sort_by_frequency_both_ways(analyst: TestClient, completed_invoices: pl.DataFrame) -> None:
    most = completed_invoices.drop_nulls("customer").group_by("customer").agg(pl.col("InvoiceNo").n_unique().alias("n"))

    ascending = _members(analyst, sort="frequency", order="asc", page_size=500)
    descending = _members(analyst, sort="frequency", order="desc", page_size=500)
    next_page = _members(analyst, sort="frequency", order="desc", page_size=500, page=2)

    asc = [m["frequency"] for m in ascending["items"]]
    desc = [m["frequency"] for m in descending["items"]]
    assert asc == sorted(asc) and desc == sorted(desc, reverse=True)
    assert asc[0] == most["n"].min() == 1
    assert desc[0] == most["n"].max() == 210
    assert desc[-1] >= next_page["items"][0]["frequency"]
    # ties come in member-key order, so pages are stable
    for items in (ascending["items"], descending["items"]):
        for a, b in pairwise(items):
            if a["frequency"] == b["frequency"]:
                assert a["member_key"] < b["member_key"]
    assert ascending["total"] == descending["total"] == 4_339


def test_member_360_lists_the_ten_newest_orders_newest_first(
    analyst: TestClient, retail: Runtime, source_lines: pl.DataFrame
) -> None:
    # customer 12748 has 224 orders (completed and cancelled); an order needs at least one importable line
    importable = source_lines.filter(
        (pl.col("CustomerID") == "12748")
        & (pl.col("UnitPrice") >= 0)
        & pl.when(pl.col("cancelled")).then(pl.col("Quantity") < 0).otherwise(pl.col("Quantity") > 0)
    )
    orders = importable.group_by("InvoiceNo").agg(pl.col("InvoiceDate").min().alias("at"), pl.col("cancelled").first())
    newest = orders.sort("at", descending=True).head(10)

    response = analyst.get(f"/api/v1/members/{member_key_of(retail, '12748')}")

    assert response.status_code == 200
    view = response.json()
    recent = view["recent_orders"]
    assert orders.height > 10 and len(recent) == 10
    times = [o["ordered_at"] for o in recent]
    assert times == sorted(times, reverse=True)
    assert [o["order_key"] for o in recent] == [f"online-retail:{n}" for n in newest["InvoiceNo"]]
    assert [o["status"] for o in recent] == ["cancelled" if c else "completed" for c in newest["cancelled"]]
    assert view["as_of"] == "2011-12-10"
    assert view["profile"]["frequency"] == 210


def test_member_360_of_a_member_with_few_orders_lists_them_all(analyst: TestClient, retail: Runtime) -> None:
    response = analyst.get(f"/api/v1/members/{member_key_of(retail, '12346')}")

    recent = response.json()["recent_orders"]
    assert [(o["order_key"], o["status"]) for o in recent] == [
        ("online-retail:C541433", "cancelled"),
        ("online-retail:541431", "completed"),
    ]
    assert [o["amount"] for o in recent] == pytest.approx([-77_183.60, 77_183.60])


# --- segments and KPIs ----------------------------------------------------------------


def test_segments_total_4339_and_match_the_reference(analyst: TestClient) -> None:
    response = analyst.get("/api/v1/segments")

    assert response.status_code == 200
    summary = response.json()
    assert summary["members"] == 4_339
    assert summary["as_of"] == "2011-12-10"
    assert {s["segment"]: s["members"] for s in summary["segments"]} == REFERENCE_SEGMENTS
    assert sum(s["share"] for s in summary["segments"]) == pytest.approx(1.0)


def test_monthly_kpis_equal_an_independent_computation(analyst: TestClient, completed_invoices: pl.DataFrame) -> None:
    # independent: GMV and orders over completed invoices (guests included), buyers = distinct customer ids
    november = completed_invoices.filter(
        (pl.col("ordered_at") >= datetime(2011, 11, 1)) & (pl.col("ordered_at") < datetime(2011, 12, 1))
    )
    gmv = november["amount"].sum()
    orders = november.height
    buyers = november["customer"].drop_nulls().n_unique()
    first_purchase = completed_invoices.drop_nulls("customer").group_by("customer").agg(pl.col("ordered_at").min())
    month_of_first = first_purchase.with_columns(pl.col("ordered_at").dt.truncate("1mo").alias("month"))
    new_by_month = dict(month_of_first.group_by("month").len().iter_rows())

    response = analyst.get("/api/v1/kpis", params={"start": "2010-12-01", "end": "2011-12-10", "granularity": "month"})

    assert response.status_code == 200
    points = {datetime.fromisoformat(p["period"]): p for p in response.json()["points"]}
    nov = points[datetime(2011, 11, 1)]
    assert nov["gmv"] == pytest.approx(gmv, abs=0.005)
    assert (nov["orders"], nov["buyers"]) == (orders, buyers)
    assert (round(gmv, 2), orders, buyers) == (1_509_496.33, 2_884, 1_665)
    assert nov["aov"] == pytest.approx(gmv / orders)
    assert {period: p["new_buyers"] for period, p in points.items()} == new_by_month
    assert nov["new_buyers"] == new_by_month[datetime(2011, 11, 1)] == 324
    assert nov["returning_buyers"] == nov["buyers"] - nov["new_buyers"]


def test_cohorts_follow_the_december_2010_cohort_independently(clients: dict[str, TestClient]) -> None:
    raw = pl.read_csv(shared_data("online_retail/online_retail.csv.gz"), infer_schema=False)
    sales = raw.filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity").cast(pl.Int64) > 0)
    ).with_columns(pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.truncate("1mo").alias("month"))
    first = sales.group_by("CustomerID").agg(pl.col("month").min().alias("cohort"))
    december = first.filter(pl.col("cohort") == datetime(2010, 12, 1))["CustomerID"]
    january = sales.filter((pl.col("month") == datetime(2011, 1, 1)) & pl.col("CustomerID").is_in(december.implode()))

    response = clients["analyst"].get("/api/v1/cohorts", params={"period": "month", "metric": "members"})

    assert response.status_code == 200, response.text
    cells = {(c["cohort"][:7], c["period_index"]): c for c in response.json()["cells"]}
    assert cells[("2010-12", 0)]["cohort_size"] == december.len() == 885
    assert cells[("2010-12", 1)]["value"] == january["CustomerID"].n_unique()
    assert cells[("2010-12", 1)]["retention"] == pytest.approx(january["CustomerID"].n_unique() / 885)
