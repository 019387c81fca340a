"""Hybrid: fusion beats each component on planted data, cold-start switch, explanations, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import load_model
from patron.recs.models import MODEL_REGISTRY
from patron.recs.models.hybrid import Hybrid, normalize_rows, rank_rows
from tests.recs._planted import planted_shop, recall_at

PAIR = [{"model": "assoc", "weight": 1.0}, {"model": "content", "weight": 1.0}]


@pytest.mark.parametrize("fusion", ["linear", "rrf"])
def test_fusion_beats_each_component_on_planted_data(fusion: str) -> None:
    shop = planted_shop()
    hybrid = Hybrid(components=PAIR, fusion=fusion).fit(shop.data, shop.catalog)
    fused = recall_at(hybrid.scores(shop.histories), shop.targets, 4, shop.histories)
    for name in ("assoc", "content"):
        single = MODEL_REGISTRY[name]().fit(shop.data, shop.catalog)
        assert fused > recall_at(single.scores(shop.histories), shop.targets, 4, shop.histories)
    assert fused == 1.0  # the partner (rules) and the cold item (content) both in the top 4


def test_zscore_normalization_also_fuses() -> None:
    shop = planted_shop()
    hybrid = Hybrid(components=PAIR, normalize="zscore").fit(shop.data, shop.catalog)
    assert recall_at(hybrid.scores(shop.histories), shop.targets, 4, shop.histories) == 1.0


def test_explain_names_the_component_behind_an_item() -> None:
    shop = planted_shop()
    hybrid = Hybrid(components=[{"model": "assoc", "label": "bought together"}, {"model": "content"}])
    hybrid.fit(shop.data, shop.catalog)
    index = shop.data.item_index()
    row = shop.histories[[0]]
    target_partner, target_cold = sorted(shop.targets[0], key=lambda i: shop.data.item_ids[i] in shop.cold)
    assert hybrid.explain(row, target_partner)[0] == "bought together"
    label, share = hybrid.explain(row, target_cold)
    assert label == "content"
    assert share > 0.5
    assert index[shop.cold[0]] == target_cold


def test_cold_start_switch_uses_the_cold_list_for_short_histories() -> None:
    shop = planted_shop()
    hybrid = Hybrid(
        components=[{"model": "buy_again"}],
        cold_start_below=2,
        cold_components=[{"model": "content"}],
    ).fit(shop.data, shop.catalog)
    content = MODEL_REGISTRY["content"]().fit(shop.data, shop.catalog)
    buy_again = MODEL_REGISTRY["buy_again"]().fit(shop.data, shop.catalog)
    one_item = shop.histories[[0]].copy().tolil()
    one_item[0, one_item.rows[0][1]] = 0
    one_item = sp.csr_matrix(one_item)
    one_item.eliminate_zeros()
    both = sp.vstack([one_item, shop.histories[[1]]]).tocsr()
    fused = hybrid.scores(both)
    np.testing.assert_allclose(fused[0], normalize_rows(content.scores(one_item), "minmax")[0], atol=1e-6)
    np.testing.assert_allclose(fused[1], normalize_rows(buy_again.scores(shop.histories[[1]]), "minmax")[0], atol=1e-6)
    assert {c["model"]: c["cold"] for c in hybrid.active_components} == {"buy_again": False, "content": True}


def test_save_and_load_restore_every_component(tmp_path: Path) -> None:
    shop = planted_shop()
    hybrid = Hybrid(
        components=[*PAIR, {"model": "session_knn", "weight": 0.5}],
        fusion="rrf",
        cold_start_below=1,
        cold_components=[{"model": "content"}, {"model": "buy_again", "weight": 0.2}],
    ).fit(shop.data, shop.catalog)
    loaded = load_model(hybrid.save(tmp_path / "hybrid"))
    rows = np.arange(shop.data.n_users)
    np.testing.assert_array_equal(loaded.scores(shop.data.matrix, rows), hybrid.scores(shop.data.matrix, rows))
    np.testing.assert_array_equal(loaded.scores(shop.histories), hybrid.scores(shop.histories))
    empty = sp.csr_matrix((1, shop.data.n_items), dtype=np.float32)
    np.testing.assert_array_equal(loaded.scores(empty), hybrid.scores(empty))


def test_components_that_cannot_fit_are_left_out_unless_strict() -> None:
    shop = planted_shop()
    hybrid = Hybrid(components=[{"model": "content"}, {"model": "assoc"}]).fit(shop.data)  # no catalog
    assert [c["model"] for c in hybrid.active_components] == ["assoc"]
    with pytest.raises(ValueError, match="ItemCatalog"):
        Hybrid(components=[{"model": "content"}, {"model": "assoc"}], strict=True).fit(shop.data)
    with pytest.raises(ValueError, match="could be fitted"):
        Hybrid(components=[{"model": "content"}]).fit(shop.data)
    with pytest.raises(ValueError, match="unknown model"):
        Hybrid(components=[{"model": "no-such-model"}]).fit(shop.data)
    with pytest.raises(ValueError):
        Hybrid(components=[{"weight": 1.0}])


def test_default_hybrid_works_without_a_catalog() -> None:
    shop = planted_shop()
    hybrid = Hybrid().fit(shop.data)
    assert {c["model"] for c in hybrid.active_components} == {"buy_again", "ease", "itemknn", "assoc", "popularity"}
    assert len(hybrid.recommend(["u000", "stranger"], k=5)[1]) == 5


def test_rank_rows_share_ties_and_flag_uninformative_items() -> None:
    ranks, informative = rank_rows(np.asarray([[0.5, 2.0, 0.5, 0.0, 2.0]]))
    assert ranks.tolist() == [[2, 0, 2, 4, 0]]
    assert informative.tolist() == [[True, True, True, False, True]]
    assert normalize_rows(np.asarray([[3.0, 3.0]]), "minmax").tolist() == [[0.0, 0.0]]
    assert normalize_rows(np.asarray([[1.0, 3.0]]), "zscore").tolist() == [[-1.0, 1.0]]
