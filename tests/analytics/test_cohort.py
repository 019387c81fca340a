"""Retention cohorts and repurchase intervals: hand-made cases, online-retail against polars, DuckDB = PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import polars as pl
import pytest

from patron.analytics.cohort import repurchase_intervals, repurchase_percentiles, retention_table
from patron.runtime import Runtime
from tests.conftest import shared_data

D = datetime


def _orders(rows: list[tuple[str | None, datetime, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_key": [f"o{i}" for i in range(len(rows))],
            "member_key": [r[0] for r in rows],
            "ordered_at": [r[1] for r in rows],
            "status": [r[2] for r in rows],
            "amount": [r[3] for r in rows],
        },
        schema_overrides={"member_key": pl.String},
    )


SMALL = _orders(
    [
        ("a", D(2021, 1, 5), "completed", 10.0),
        ("a", D(2021, 3, 2), "completed", 30.0),
        ("b", D(2021, 1, 20), "completed", 20.0),
        ("b", D(2021, 1, 25), "completed", 5.0),
        ("b", D(2021, 2, 1), "cancelled", 99.0),  # cancelled: never counts
        ("c", D(2021, 2, 10), "completed", 7.0),
        (None, D(2021, 2, 11), "completed", 50.0),  # guest: never counts
    ]
)


def test_monthly_member_retention_fills_periods_without_buyers(duck: ibis.BaseBackend) -> None:
    orders = duck.create_table("orders", SMALL)

    table = retention_table(orders, period="month", metric="members").to_polars()

    assert table.select("cohort", "period_index", "cohort_size", "value", "retention").rows() == [
        (D(2021, 1, 1), 0, 2, 2, 1.0),
        (D(2021, 1, 1), 1, 2, 0, 0.0),  # b's February order was cancelled; c is not in this cohort
        (D(2021, 1, 1), 2, 2, 1, 0.5),
        (D(2021, 2, 1), 0, 1, 1, 1.0),
        (D(2021, 2, 1), 1, 1, 0, 0.0),
    ]


def test_revenue_retention_is_relative_to_the_first_period(duck: ibis.BaseBackend) -> None:
    orders = duck.create_table("orders", SMALL)

    table = retention_table(orders, period="month", metric="revenue", end=date(2021, 2, 1)).to_polars()

    # Only the January cohort starts before the end, and only January orders count.
    assert table.select("cohort", "period_index", "value", "retention").rows() == [(D(2021, 1, 1), 0, 35.0, 1.0)]


def test_weekly_cohorts_count_whole_iso_weeks(duck: ibis.BaseBackend) -> None:
    orders = duck.create_table("orders", SMALL)

    table = retention_table(orders, period="week", metric="members", start=date(2021, 1, 18)).to_polars()

    # b: Wednesday 2021-01-20 (week of the 18th), then Monday the 25th (next week).
    assert table.filter(pl.col("value") > 0).select("cohort", "period_index", "value").rows() == [
        (D(2021, 1, 18), 0, 1),
        (D(2021, 1, 18), 1, 1),
        (D(2021, 2, 8), 0, 1),
    ]


def test_repurchase_intervals_bin_the_gaps_between_consecutive_orders(duck: ibis.BaseBackend) -> None:
    orders = duck.create_table("orders", SMALL)

    histogram = repurchase_intervals(orders, edges=(0, 7, 30)).to_polars()
    percentiles = repurchase_percentiles(orders, quantiles=(0.5,)).to_polars()

    # Gaps: a 56 days (Jan 5 -> Mar 2), b 5 days (Jan 20 -> 25); c has one order.
    assert histogram.select("lower_days", "upper_days", "intervals", "cumulative_share").rows() == [
        (0.0, 7.0, 1, 0.5),
        (7.0, 30.0, 0, 0.5),
        (30.0, None, 1, 1.0),
    ]
    assert percentiles.rows(named=True) == [{"intervals": 2, "mean_days": 30.5, "p50": 30.5}]


def _raw_member_lines() -> pl.DataFrame:
    """Independent reading of the CSV: sold lines of known customers."""
    raw = pl.read_csv(
        shared_data("online_retail/online_retail.csv.gz"),
        schema_overrides={"InvoiceNo": pl.String, "CustomerID": pl.String, "StockCode": pl.String},
    )
    return raw.filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") >= 0)
    ).select(
        "CustomerID",
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.truncate("1mo").alias("month"),
        (pl.col("Quantity") * pl.col("UnitPrice")).alias("amount"),
    )


@pytest.mark.slow
def test_monthly_cohorts_equal_an_independent_polars_count(retail: Runtime) -> None:
    lines = _raw_member_lines()
    first = lines.group_by("CustomerID").agg(pl.col("month").min().alias("cohort"))
    december = first.filter(pl.col("cohort") == D(2010, 12, 1))["CustomerID"]
    back_in_january = lines.filter(pl.col("CustomerID").is_in(december.to_list()) & (pl.col("month") == D(2011, 1, 1)))
    gmv = lines.group_by("month").agg(pl.col("amount").sum()).sort("month")

    with retail.warehouse(read_only=True) as warehouse:
        members = retention_table(warehouse.table("orders"), period="month", metric="members").to_polars()
        revenue = retention_table(warehouse.table("orders"), period="month", metric="revenue").to_polars()

    cohort = members.filter(pl.col("cohort") == D(2010, 12, 1)).sort("period_index")
    assert cohort["cohort_size"][0] == december.len() == 885  # the well-known size of the December 2010 cohort
    assert cohort["value"][1] == back_in_january["CustomerID"].n_unique()
    assert cohort["retention"][1] == pytest.approx(cohort["value"][1] / 885)
    by_month = revenue.group_by("period").agg(pl.col("value").sum()).sort("period")
    assert by_month["period"].to_list() == gmv["month"].to_list()
    assert by_month["value"].to_list() == pytest.approx(gmv["amount"].to_list(), rel=1e-9)


@pytest.mark.slow
@pytest.mark.postgres
def test_cohorts_equal_on_duckdb_and_postgres(retail: Runtime, postgres: ibis.BaseBackend) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        postgres.create_table("wh_cohort_orders", warehouse.table("orders").to_pyarrow(), overwrite=True)
        postgres.raw_sql("ANALYZE wh_cohort_orders").close()
        duck_results = _cohort_results(warehouse.table("orders"))
    try:
        pg_results = _cohort_results(postgres.table("wh_cohort_orders"))
    finally:
        postgres.drop_table("wh_cohort_orders", force=True)

    for name, duck_frame in duck_results.items():
        pg_frame = pg_results[name]
        assert pg_frame.columns == duck_frame.columns, name
        exact = [c for c, t in duck_frame.schema.items() if not t.is_float()]
        assert pg_frame.select(exact).equals(duck_frame.select(exact)), name
        for column in set(duck_frame.columns) - set(exact):
            assert pg_frame[column].is_null().equals(duck_frame[column].is_null()), (name, column)
            expected = duck_frame[column].fill_null(0.0).to_list()
            assert pg_frame[column].fill_null(0.0).to_list() == pytest.approx(expected, rel=1e-9), (name, column)


def _cohort_results(orders: ibis.Table) -> dict[str, pl.DataFrame]:
    return {
        "monthly members": retention_table(orders, period="month", metric="members").to_polars(),
        "monthly revenue": retention_table(orders, period="month", metric="revenue").to_polars(),
        "weekly members": retention_table(
            orders, period="week", metric="members", start=date(2011, 1, 1), end=date(2011, 7, 1)
        ).to_polars(),
        "intervals": repurchase_intervals(orders).to_polars(),
        "percentiles": repurchase_percentiles(orders).to_polars(),
    }
