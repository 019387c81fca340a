"""Training a version from the warehouse: its files, facts and holdout metrics."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from patron.errors import ValidationError
from patron.recs.rules import RecRequest
from patron.recs.serving import RecEngine, read_member_matrix
from patron.recs.training import train_version
from patron.runtime import Runtime
from tests.conftest import shared_data
from tests.recs._serving_fixtures import shop_runtime, shop_version

__all__ = ["shop_runtime", "shop_version"]

FILES = {
    "model",
    "items.parquet",
    "purchases.npz",
    "repeat_categories.json",
    "trending.parquet",
    "members.parquet",
    "interactions.json",
    "metrics.json",
    "manifest.json",
}


def test_version_directory(shop_version: Path) -> None:
    assert {p.name for p in shop_version.iterdir()} == FILES
    assert shop_version.parent.name == "recs" and not list(shop_version.parent.glob(".*.tmp"))
    manifest = json.loads((shop_version / "manifest.json").read_text())
    assert manifest["model"] == "itemknn" and manifest["params"]["similarity"] == "cosine"
    assert manifest["as_of"] == "2024-02-10T00:00:00"
    assert (manifest["members"], manifest["items"], manifest["interactions"]) == (40, 30, 161)
    assert manifest["repeat_categories"] == ["coffee"]


def test_item_facts_and_segments(shop_version: Path) -> None:
    items = pq.read_table(shop_version / "items.parquet").to_pydict()
    stock = dict(zip(items["item_id"], items["in_stock"], strict=True))
    assert stock["c07"] is False and stock["c08"] is True and stock["b00"] is True  # latest count wins
    members = dict(zip(*pq.read_table(shop_version / "members.parquet").to_pydict().values(), strict=True))
    assert members["m00"] == "champions" and members["m39"] == "hibernating"
    trending = pq.read_table(shop_version / "trending.parquet").to_pydict()
    assert set(trending["segment"]) == {"", "champions", "hibernating"}
    member_ids, bought = read_member_matrix(shop_version / "purchases.npz")
    assert bought.shape == (40, 30) and member_ids[0] == "m00"


def test_holdout_metrics_on_the_planted_shop(shop_version: Path) -> None:
    # holdout = days 12..40; the only new purchase is m03's b07 (day 27). Before day 12 m03 bought c03 and s03,
    # whose only neighbours are each other (seen): every unseen item scores 0 and ties keep the item order
    # b00 < b01 < ... so b07 comes 8th: recall 1, NDCG 1 / log2(9).
    metrics = json.loads((shop_version / "metrics.json").read_text())
    assert metrics["members"] == 1 and metrics["recall"] == 1.0
    assert metrics["ndcg"] == pytest.approx(1 / np.log2(9))
    assert metrics["holdout_days"] == 28 and 0 < metrics["coverage"] <= 1


def test_unknown_model_is_refused(shop_runtime: Runtime) -> None:
    with pytest.raises(ValidationError, match="unknown model"):
        train_version(shop_runtime, "no-such-model", {})


def retail_lines() -> pl.DataFrame:
    """Members' lines of completed invoices from the raw CSV, with the invoice's first timestamp as ``at``."""
    raw = pl.read_csv(
        shared_data("online_retail/online_retail.csv.gz"),
        schema_overrides={"CustomerID": pl.String, "InvoiceNo": pl.String, "StockCode": pl.String},
    ).with_columns(pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"))
    first = raw.group_by("InvoiceNo").agg(pl.col("InvoiceDate").min().alias("at"))
    lines = raw.filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") >= 0)
    ).join(first, on="InvoiceNo")
    return lines


def new_buyers_in_holdout(lines: pl.DataFrame, as_of: datetime, days: int) -> int:
    """Members with a purchase before the cut who bought a product new to them after it."""
    cut = as_of - timedelta(days=days)
    before = lines.filter(pl.col("at") < cut).select("CustomerID", "StockCode").unique()
    after = lines.filter((pl.col("at") >= cut) & (pl.col("at") < as_of)).select("CustomerID", "StockCode").unique()
    new = after.join(before, on=["CustomerID", "StockCode"], how="anti")
    return int(new.join(before.select("CustomerID").unique(), on="CustomerID").select("CustomerID").n_unique())


@pytest.mark.slow
def test_online_retail_versions(retail: Runtime) -> None:
    as_of = datetime(2011, 12, 10)
    knn = train_version(retail, "itemknn", {}, as_of=as_of)
    popular = train_version(retail, "popularity", {}, as_of=as_of)
    knn_metrics = json.loads((knn / "metrics.json").read_text())
    popular_metrics = json.loads((popular / "metrics.json").read_text())
    lines = retail_lines()
    assert knn_metrics["members"] == popular_metrics["members"] == min(2000, new_buyers_in_holdout(lines, as_of, 28))
    assert knn_metrics["ndcg"] > popular_metrics["ndcg"] > 0
    assert knn_metrics["coverage"] > popular_metrics["coverage"]
    engine = RecEngine.open(knn)
    member = str(engine.model.user_ids[0])
    rec = engine.for_member(member)
    assert rec.source == "personalized" and len(rec.items) == 10
    # the file has no categories: all products share the category "", repeat-purchase when at least 20% of
    # buyers bought one same product on two invoices or more
    per_product = lines.group_by("CustomerID", "StockCode").agg(pl.col("InvoiceNo").n_unique().alias("n"))
    repeaters = per_product.filter(pl.col("n") >= 2)["CustomerID"].n_unique() / per_product["CustomerID"].n_unique()
    learned = json.loads((knn / "repeat_categories.json").read_text())
    assert learned["all"][""]["share"] == pytest.approx(repeaters)
    assert list(learned["categories"]) == ([""] if repeaters >= 0.2 else [])
    bought = set(engine.facts.item_ids[engine.purchased(member)].tolist())
    strict = engine.for_member(member, RecRequest(exclude=sorted(bought)))
    assert not bought & {i.item_id for i in strict.items}
    assert np.isfinite([i.score for i in rec.items]).all()
