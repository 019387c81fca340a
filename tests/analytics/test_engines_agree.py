"""The same Ibis profiles and KPIs give the same numbers on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pytest

from patron.analytics.kpi import kpi_table
from patron.analytics.rfm import order_values, rfm_profiles
from patron.runtime import Runtime

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AS_OF = datetime(2011, 12, 10)
TABLES = ("orders", "order_lines", "member_order")


def test_rfm_and_kpis_equal_on_duckdb_and_postgres(retail: Runtime, postgres: ibis.BaseBackend) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        for name in TABLES:
            postgres.create_table(f"wh_{name}", warehouse.table(name).to_pyarrow(), overwrite=True)
            # Fresh tables have no statistics; without them the planner picks nested loops.
            postgres.raw_sql(f"ANALYZE wh_{name}").close()
        duck = {name: warehouse.table(name) for name in TABLES}
        with rfm_profiles(duck["orders"], order_values(duck["order_lines"]), duck["member_order"], AS_OF) as rfm:
            duck_rfm = rfm.to_polars()
        duck_kpi = kpi_table(duck["orders"], date(2010, 12, 1), date(2011, 12, 10), "week").to_polars()
    pg = {name: postgres.table(f"wh_{name}") for name in TABLES}

    with rfm_profiles(pg["orders"], order_values(pg["order_lines"]), pg["member_order"], AS_OF) as rfm:
        pg_rfm = rfm.to_polars()
    pg_kpi = kpi_table(pg["orders"], date(2010, 12, 1), date(2011, 12, 10), "week").to_polars()

    columns = ["member_key", "recency_days", "frequency", "r_score", "f_score", "m_score", "segment", "lifecycle"]
    assert pg_rfm.sort("member_key").select(columns).equals(duck_rfm.sort("member_key").select(columns))
    assert pg_rfm["monetary"].sum() == pytest.approx(duck_rfm["monetary"].sum(), rel=1e-12)
    assert pg_kpi.height == duck_kpi.height == 53  # ISO weeks touched by 2010-12-01 .. 2011-12-09
    for column in ("orders", "buyers", "new_buyers", "returning_buyers"):
        assert pg_kpi[column].to_list() == duck_kpi[column].to_list()
    assert pg_kpi["gmv"].to_list() == pytest.approx(duck_kpi["gmv"].to_list(), rel=1e-9)
    assert pg_kpi["repurchase_rate"].to_list() == pytest.approx(duck_kpi["repurchase_rate"].to_list(), rel=1e-12)
    for name in TABLES:
        postgres.drop_table(f"wh_{name}", force=True)
