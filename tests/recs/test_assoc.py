"""Association rules: counts against brute force and an independent polars computation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from patron.recs.base import Interactions, load_model
from patron.recs.models.assoc import AssociationRules, basket_matrix
from tests.conftest import shared_data

# (user, time, item): user a's two orders at t=1 and t=2 are different baskets.
EVENTS = [
    ("a", 1, "bread"), ("a", 1, "butter"), ("a", 1, "milk"),
    ("a", 2, "bread"), ("a", 2, "butter"),
    ("b", 1, "bread"), ("b", 1, "butter"), ("b", 1, "bread"),
    ("b", 5, "milk"), ("b", 5, "cereal"),
    ("c", 3, "milk"), ("c", 3, "cereal"), ("c", 3, "bread"),
    ("d", 4, "jam"),
    ("e", 4, "jam"), ("e", 4, "bread"), ("e", 4, "butter"),
]  # fmt: skip


def _data() -> Interactions:
    users, times, items = zip(*EVENTS, strict=True)
    return Interactions.from_events(users, items, times=times)


def _brute_force() -> tuple[int, Counter[str], Counter[tuple[str, str]]]:
    baskets: dict[tuple[str, int], set[str]] = {}
    for user, time, item in EVENTS:
        baskets.setdefault((user, time), set()).add(item)
    singles: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for basket in baskets.values():
        singles.update(basket)
        for x, y in combinations(sorted(basket), 2):
            pairs[(x, y)] += 1
            pairs[(y, x)] += 1
    return len(baskets), singles, pairs


def test_baskets_are_user_time_groups_with_each_item_once() -> None:
    baskets = basket_matrix(_data())
    assert baskets.shape[0] == 7
    assert set(baskets.data.tolist()) == {1.0}


def test_support_confidence_lift_match_a_brute_force_count() -> None:
    n, singles, pairs = _brute_force()
    model = AssociationRules(min_count=1).fit(_data())
    for item in singles:
        rules = {r["item"]: r for r in model.rules_for(item, k=100)}
        expected = {y for (x, y) in pairs if x == item}
        assert set(rules) == expected
        for other, rule in rules.items():
            both = pairs[(item, other)]
            assert rule["support"] == pytest.approx(both / n)
            assert rule["confidence"] == pytest.approx(both / singles[item])
            assert rule["lift"] == pytest.approx(both * n / (singles[item] * singles[other]))


def test_rules_are_ranked_and_thresholds_apply() -> None:
    model = AssociationRules(min_count=2).fit(_data())
    # bread shares 4 baskets with butter (lift 4*7/(5*4)), 2 with milk (lift 2*7/(5*3)), 1 with cereal or jam.
    assert [r["item"] for r in model.rules_for("bread", k=10)] == ["butter", "milk"]
    strict = AssociationRules(min_count=1, min_confidence=0.9).fit(_data())
    # butter -> bread holds in all 4 butter baskets; bread -> butter in 4 of 5.
    assert [r["item"] for r in strict.rules_for("butter")] == ["bread"]
    assert strict.rules_for("bread") == []
    lift_order = AssociationRules(min_count=1).fit(_data()).rules_for("milk", metric="lift")
    lifts = [r["lift"] for r in lift_order]
    assert lifts == sorted(lifts, reverse=True)
    assert model.rules_for("unknown") == []


def test_history_scores_sum_rule_strengths() -> None:
    _, singles, pairs = _brute_force()
    model = AssociationRules(min_count=1, metric="confidence").fit(_data())
    history = model.history_of({"milk": 3.0, "jam": 1.0})
    scores = model.scores(history)[0]
    for item in singles:
        expected = sum(pairs[(h, item)] / singles[h] for h in ("milk", "jam"))
        assert scores[model._item_index[item]] == pytest.approx(expected)
    top = model.recommend(["nobody"], k=2, histories=history)[0]
    assert top[0][0] == "bread"  # milk->bread 2/3 + jam->bread 1/2


def test_save_and_load_keep_rules_and_scores(tmp_path: Path) -> None:
    model = AssociationRules(metric="lift", min_count=1).fit(_data())
    loaded = load_model(model.save(tmp_path / "assoc"))
    assert loaded.rules_for("milk") == model.rules_for("milk")  # type: ignore[attr-defined]
    history = model.history_of({"bread": 1.0})
    np.testing.assert_array_equal(loaded.scores(history), model.scores(history))


@pytest.mark.slow
def test_online_retail_pairs_match_an_independent_polars_count() -> None:
    lines = (
        pl.read_csv(shared_data("online_retail/online_retail.csv.gz"), schema_overrides={"InvoiceNo": pl.Utf8,
                    "StockCode": pl.Utf8, "CustomerID": pl.Utf8})
        .filter(pl.col("CustomerID").is_not_null() & (pl.col("Quantity") > 0)
                & ~pl.col("InvoiceNo").str.starts_with("C"))
        .select("CustomerID", "InvoiceDate", "StockCode")
    )  # fmt: skip
    times = [datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp() for t in lines["InvoiceDate"].to_list()]
    data = Interactions.from_events(lines["CustomerID"].to_numpy(), lines["StockCode"].to_numpy(), times=times)
    model = AssociationRules(min_count=1).fit(data)

    baskets = lines.unique()
    n = baskets.select("CustomerID", "InvoiceDate").unique().height
    singles = baskets.group_by("StockCode").len("n_i")
    chosen = ["22697", "85123A", "22423", "23084", "21212"]
    pairs = (
        baskets.filter(pl.col("StockCode").is_in(chosen))
        .join(baskets, on=["CustomerID", "InvoiceDate"], suffix="_j")
        .filter(pl.col("StockCode") != pl.col("StockCode_j"))
        .group_by("StockCode", "StockCode_j").len("n_ij")
        .join(singles, on="StockCode")
        .join(singles.rename({"StockCode": "StockCode_j", "n_i": "n_j"}), on="StockCode_j")
    )  # fmt: skip
    assert model.n_baskets == n
    for item in chosen:
        expected = pairs.filter(pl.col("StockCode") == item)
        rules = {r["item"]: r for r in model.rules_for(item, k=10_000)}
        assert set(rules) == set(expected["StockCode_j"].to_list())
        for row in expected.iter_rows(named=True):
            rule = rules[row["StockCode_j"]]
            assert rule["support"] == pytest.approx(row["n_ij"] / n)
            assert rule["confidence"] == pytest.approx(row["n_ij"] / row["n_i"])
            assert rule["lift"] == pytest.approx(row["n_ij"] * n / (row["n_i"] * row["n_j"]))
    # The best-known pair of this shop: the green and pink regency teacups.
    top = model.rules_for("22697", k=1, metric="confidence")[0]
    assert top["item"] == "22699"
