"""RFM on online-retail against the reference values in ../shared/data/README.md.

The reference was computed independently with pandas, DuckDB and polars:
customers with an id, cancellations removed, as-of 2011-12-10, pandas qcut
scores with frequency ties ordered by customer id.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from sqlalchemy import select

from patron.analytics.artefacts import reader_for
from patron.members.models import MemberIdentity
from patron.runtime import Runtime
from tests.conftest import REFERENCE_SEGMENTS, shared_data

pytestmark = pytest.mark.slow


def _profile_of(retail: Runtime, customer_id: str) -> dict[str, object]:
    with retail.store.session() as sess:
        key = sess.scalar(
            select(MemberIdentity.member_key).where(
                MemberIdentity.source == "online-retail", MemberIdentity.source_id == customer_id
            )
        )
    profiles = reader_for(retail.settings.artefact_dir).table("profiles")
    rows: list[dict[str, object]] = profiles.filter(profiles.member_key == key).to_pyarrow().to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_segment_counts_and_totals_equal_reference(retail: Runtime) -> None:
    reader = reader_for(retail.settings.artefact_dir)
    profiles = reader.table("profiles").to_polars()

    assert reader.manifest["as_of"] == "2011-12-10"
    assert profiles.height == 4_339
    assert profiles["frequency"].sum() == 18_536
    assert profiles["monetary"].sum() == pytest.approx(8_911_407.90, abs=0.01)
    counts = dict(profiles.group_by("segment").len().iter_rows())
    assert counts == REFERENCE_SEGMENTS


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        ("12346", {"r_score": 1, "f_score": 1, "m_score": 5, "segment": "hibernating", "recency_days": 325}),
        ("17850", {"r_score": 1, "f_score": 5, "m_score": 5, "segment": "cant_lose"}),
        ("12347", {"r_score": 5, "f_score": 5, "m_score": 5, "segment": "champions"}),
    ],
)
def test_spot_checks_equal_reference(retail: Runtime, customer: str, expected: dict[str, object]) -> None:
    profile = _profile_of(retail, customer)

    assert {k: profile[k] for k in expected} == expected


def test_customer_12346_figures(retail: Runtime) -> None:
    profile = _profile_of(retail, "12346")

    assert profile["frequency"] == 1
    assert profile["monetary"] == pytest.approx(77_183.60)


def test_lifecycle_stages_equal_an_independent_computation(retail: Runtime) -> None:
    """Stages per docs/analytics.md, recomputed with polars from the raw file (as-of 2011-12-10)."""
    raw = pl.read_csv(shared_data("online_retail/online_retail.csv.gz"), infer_schema=False)
    orders = (
        raw.filter(pl.col("CustomerID").is_not_null() & ~pl.col("InvoiceNo").str.starts_with("C"))
        .filter(pl.col("Quantity").cast(pl.Int64) > 0)
        .with_columns(pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"))
        .group_by("CustomerID", "InvoiceNo")
        .agg(pl.col("InvoiceDate").min())
    )
    as_of = pl.lit(datetime(2011, 12, 10))
    days = ((as_of - pl.col("InvoiceDate")).dt.total_seconds() / 86400).floor()
    per = (
        orders.with_columns(days.alias("age"))
        .group_by("CustomerID")
        .agg(
            pl.col("age").max().alias("since_first"),
            pl.col("age").min().alias("recency"),
            ((pl.col("age") >= 30) & (pl.col("age") < 60)).any().alias("previous"),
            ((pl.col("age") >= 60) & (pl.col("age") < 150)).any().alias("before"),
        )
    )
    current = pl.col("recency") < 30
    stage = (
        pl.when(pl.col("since_first") < 30)
        .then(pl.lit("new"))
        .when(current & pl.col("previous"))
        .then(pl.lit("active"))
        .when(current & pl.col("before"))
        .then(pl.lit("returning"))
        .when(current)
        .then(pl.lit("resurrecting"))
        .when(pl.col("recency") < 180)
        .then(pl.lit("dormant"))
        .otherwise(pl.lit("churned"))
    )
    expected = dict(per.select(stage.alias("stage")).group_by("stage").len().iter_rows())

    profiles = reader_for(retail.settings.artefact_dir).table("profiles").to_polars()

    assert dict(profiles.group_by("lifecycle").len().iter_rows()) == expected
    assert set(expected) == {"new", "active", "returning", "resurrecting", "dormant", "churned"}
