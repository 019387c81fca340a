"""Per-member CLV figures of the build, checked against an independent summary of the raw file."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from patron.analytics.artefacts import reader_for
from patron.analytics.member_value import member_value, purchase_days
from patron.clv import bgnbd
from patron.clv.summary import CustomerSummary
from patron.members.models import MemberIdentity
from patron.runtime import Runtime
from tests.conftest import shared_data

pytestmark = pytest.mark.slow
AS_OF = datetime(2011, 12, 10)


def _independent_summary() -> pl.DataFrame:
    """Repeat purchase days, recency and age in weeks, mean repeat-day spend: plain polars over the CSV."""
    raw = pl.read_csv(shared_data("online_retail/online_retail.csv.gz"), infer_schema=False)
    lines = raw.filter(pl.col("CustomerID").is_not_null() & ~pl.col("InvoiceNo").str.starts_with("C")).with_columns(
        pl.col("CustomerID").str.replace(r"\.0$", ""),
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.truncate("1d").alias("day"),
        (pl.col("Quantity").cast(pl.Float64) * pl.col("UnitPrice").cast(pl.Float64)).alias("amount"),
    )
    lines = lines.filter(pl.col("Quantity").cast(pl.Int64) > 0)
    days = lines.group_by("CustomerID", "day").agg(pl.col("amount").sum()).sort("CustomerID", "day")
    week = 7 * 86400
    return days.group_by("CustomerID").agg(
        (pl.len() - 1).cast(pl.Float64).alias("frequency"),
        ((pl.col("day").max() - pl.col("day").min()).dt.total_seconds() / week).alias("recency"),
        ((pl.lit(AS_OF) - pl.col("day").min()).dt.total_seconds() / week).alias("T"),
        pl.when(pl.len() > 1)
        .then(pl.col("amount").slice(1).sum() / (pl.len() - 1))
        .otherwise(0.0)
        .alias("monetary_value"),
    )


def _keys(retail: Runtime) -> pl.DataFrame:
    with retail.store.session() as sess:
        rows = sess.query(MemberIdentity.source_id, MemberIdentity.member_key).all()
    return pl.DataFrame(rows, schema={"CustomerID": pl.String, "member_key": pl.String}, orient="row")


def test_purchase_days_equal_an_independent_summary(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        ours = pl.from_arrow(purchase_days(warehouse.table("orders"), AS_OF).to_pyarrow())
    assert isinstance(ours, pl.DataFrame)
    theirs = _independent_summary().join(_keys(retail), on="CustomerID")

    both = ours.join(theirs, on="member_key", suffix="_ref")

    assert both.height == ours.height == theirs.height == 4_339
    for column in ("frequency", "recency", "T", "monetary_value"):
        assert np.allclose(both[column].to_numpy(), both[f"{column}_ref"].to_numpy(), rtol=1e-9, atol=1e-9), column


def test_build_scores_every_member_with_the_fitted_models(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        scored = member_value(warehouse.table("orders"), AS_OF)
    reference = _independent_summary()
    fit = bgnbd.fit(CustomerSummary(*(reference[c].to_numpy() for c in ("frequency", "recency", "T"))))

    assert scored.purchases is not None and scored.spend is not None
    assert scored.purchases.r == pytest.approx(fit.params.r, rel=1e-4)
    assert scored.purchases.b == pytest.approx(fit.params.b, rel=1e-4)
    profiles = reader_for(retail.settings.artefact_dir).table("profiles").to_polars()
    assert profiles["p_alive"].null_count() == 0
    assert profiles["p_alive"].is_between(0, 1).all()
    assert (profiles["expected_purchases_90d"] >= 0).all()
    assert (profiles["clv_12m"] > 0).all()
    frequent = profiles.sort("frequency", descending=True).head(100)["expected_purchases_90d"].mean()
    single = profiles.filter(pl.col("frequency") == 1)["expected_purchases_90d"].mean()
    assert isinstance(frequent, float) and isinstance(single, float) and frequent > 5 * single
