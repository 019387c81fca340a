"""Content-based model: attribute blocks, Chinese titles, cold items, the catalog requirement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patron.recs.base import Interactions, ItemCatalog, load_model, top_k
from patron.recs.models.content import ContentBased
from tests.recs._planted import planted_shop, recall_at

CHINESE = [
    ("i1", "夏季新款碎花连衣裙女", "女装", "花语", 129.0),
    ("i2", "法式复古连衣裙长款", "女装", "花语", 199.0),
    ("i3", "真丝连衣裙收腰显瘦", "女装", "丝韵", 399.0),
    ("i4", "无线蓝牙耳机降噪", "数码", "声动", 299.0),
    ("i5", "蓝牙耳机运动款防水", "数码", "声动", 159.0),
    ("i6", "机械键盘青轴游戏", "数码", "键客", 259.0),
    ("i7", "不锈钢保温杯大容量", "家居", "暖居", 89.0),
]


def _catalog(rows: list[tuple[str, str, str, str, float]]) -> ItemCatalog:
    ids, titles, cats, brands, prices = zip(*rows, strict=True)
    return ItemCatalog(
        np.asarray(ids), np.asarray(titles, dtype=object), np.asarray(cats, dtype=object),
        np.asarray(brands, dtype=object), np.asarray(prices, dtype=np.float64),
    )  # fmt: skip


def _chinese_model(**params: float) -> tuple[ContentBased, Interactions]:
    catalog = _catalog(CHINESE)
    # Only i1, i4 and i7 were ever bought; the rest are cold.
    data = Interactions.from_events(["u1", "u2", "u3"], ["i1", "i4", "i7"], item_ids=catalog.item_ids)
    return ContentBased(**params).fit(data, catalog), data


def test_chinese_titles_find_the_same_kind_of_product_among_cold_items() -> None:
    model, _ = _chinese_model()
    dress = model.recommend(["new"], k=2, histories=model.history_of({"i1": 1.0}))[0]
    assert {item for item, _ in dress} == {"i2", "i3"}  # the other dresses, never bought by anyone
    earphones = model.recommend(["new"], k=1, histories=model.history_of({"i4": 1.0}))[0]
    assert earphones[0][0] == "i5"
    assert model.similar_items("i2", k=1)[0][0] in {"i1", "i3"}


def test_title_block_alone_separates_chinese_titles() -> None:
    model, _ = _chinese_model(category_weight=0.0, brand_weight=0.0, price_weight=0.0)
    top = model.recommend(["new"], k=1, histories=model.history_of({"i5": 1.0}))[0]
    assert top[0][0] == "i4"  # shares 蓝牙耳机


def test_blocks_weigh_category_brand_and_price_band() -> None:
    rows = [
        ("a", "alpha", "shoes", "acme", 10.0),
        ("b", "bravo", "shoes", "acme", 11.0),
        ("c", "charlie", "shoes", "zenith", 90.0),
        ("d", "delta", "hats", "acme", 10.0),
    ]
    catalog = _catalog(rows)
    data = Interactions.from_events(["u"], ["a"], item_ids=catalog.item_ids)
    by_brand = ContentBased(title_weight=0.0, category_weight=0.0, brand_weight=1.0, price_weight=0.0)
    scores = by_brand.fit(data, catalog).scores(by_brand.history_of({"a": 1.0}))[0]
    index = data.item_index()
    assert scores[index["d"]] > scores[index["c"]]
    by_cat = ContentBased(title_weight=0.0, category_weight=1.0, brand_weight=0.0, price_weight=0.0)
    scores = by_cat.fit(data, catalog).scores(by_cat.history_of({"a": 1.0}))[0]
    assert scores[index["c"]] > scores[index["d"]]
    by_price = ContentBased(title_weight=0.0, category_weight=0.0, brand_weight=0.0, price_weight=1.0, price_bands=2)
    scores = by_price.fit(data, catalog).scores(by_price.history_of({"a": 1.0}))[0]
    # a and b are in the cheaper half of shoes, c in the dearer; d is the only hat.
    assert scores[index["b"]] > scores[index["c"]]
    assert scores[index["b"]] > scores[index["d"]]


def test_profile_is_the_weighted_mean_of_the_history() -> None:
    model, _ = _chinese_model()
    dress_heavy = model.scores(model.history_of({"i1": 5.0, "i4": 1.0}))[0]
    phone_heavy = model.scores(model.history_of({"i1": 1.0, "i4": 5.0}))[0]
    index = model._item_index
    assert dress_heavy[index["i2"]] > dress_heavy[index["i5"]]
    assert phone_heavy[index["i5"]] > phone_heavy[index["i2"]]


def test_cold_items_are_recommended_on_planted_data() -> None:
    shop = planted_shop()
    model = ContentBased().fit(shop.data, shop.catalog)
    idx, _ = top_k(model.scores(shop.histories), 3, shop.histories)
    cold = {shop.data.item_index()[c] for c in shop.cold}
    assert all(set(row.tolist()) & cold for row in idx)
    assert recall_at(model.scores(shop.histories), shop.targets, 3, shop.histories) == 0.5  # cold yes, partner no


def test_needs_a_catalog_and_handles_empty_histories(tmp_path: Path) -> None:
    data = Interactions.from_events(["u1"], ["i1"])
    with pytest.raises(ValueError, match="ItemCatalog"):
        ContentBased().fit(data)
    model, _ = _chinese_model()
    empty = model.recommend(["nobody"], k=3)[0]
    assert [item for item, _ in empty] == ["i1", "i4", "i7"]  # only the popularity tie-break is left
    loaded = load_model(model.save(tmp_path / "content"))
    history = model.history_of({"i2": 1.0, "i6": 2.0})
    np.testing.assert_array_equal(loaded.scores(history), model.scores(history))


def test_catalog_without_titles_still_works() -> None:
    rows = [("a", "", "shoes", "", np.nan), ("b", "", "shoes", "", np.nan), ("c", "", "hats", "", np.nan)]
    catalog = _catalog(rows)
    data = Interactions.from_events(["u"], ["a"], item_ids=catalog.item_ids)
    model = ContentBased().fit(data, catalog)
    assert model.recommend(["x"], k=1, histories=model.history_of({"a": 1.0}))[0][0][0] == "b"
