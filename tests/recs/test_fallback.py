"""The serving fallback chain: the right source for each kind of request, always a full list."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import Interactions
from patron.recs.fallback import choose_list, segment_popularity, trending_scores
from patron.recs.models import MODEL_REGISTRY
from tests.recs._planted import planted_shop

DAY = 86_400.0
# (user, item, weight, day): vips buy caviar lately, students buy noodles; old events are about tea.
EVENTS = [
    ("v1", "caviar", 1.0, 30), ("v2", "caviar", 1.0, 29), ("v2", "champagne", 1.0, 28),
    ("s1", "noodles", 1.0, 30), ("s2", "noodles", 2.0, 29), ("s2", "coffee", 1.0, 27),
    ("v1", "tea", 1.0, 1), ("s1", "tea", 1.0, 1), ("x1", "tea", 5.0, 0), ("x1", "bread", 1.0, 30),
]  # fmt: skip
SEGMENTS = {"v1": "vip", "v2": "vip", "s1": "student", "s2": "student"}


def _data() -> Interactions:
    users, items, weights, days = zip(*EVENTS, strict=True)
    return Interactions.from_events(users, items, weights, [d * DAY for d in days])


def test_segment_popularity_decays_and_splits_by_segment() -> None:
    data = _data()
    by_segment = segment_popularity(data, SEGMENTS, half_life_days=10.0)
    index = data.item_index()
    assert set(by_segment) == {"vip", "student"}
    vip = by_segment["vip"]
    assert vip[index["caviar"]] == pytest.approx(1.0 + 0.5 ** (1 / 10))
    assert vip[index["tea"]] == pytest.approx(0.5 ** (29 / 10))
    assert vip[index["noodles"]] == 0.0  # only students bought noodles
    trend = trending_scores(data, half_life_days=10.0)
    assert trend[index["tea"]] == pytest.approx(5 * 0.5**3 + 2 * 0.5 ** (29 / 10))
    with pytest.raises(ValueError):
        segment_popularity(data, SEGMENTS, half_life_days=0.0)


def test_empty_history_gets_its_segment_then_global_trending() -> None:
    data = _data()
    model = MODEL_REGISTRY["itemknn"]().fit(data)
    segments = segment_popularity(data, SEGMENTS, 10.0)
    trend = trending_scores(data, 10.0)
    index = data.item_index()
    vip = choose_list(model, None, 4, segment="vip", segment_scores=segments, trending=trend)
    assert vip.source == "trending_in_segment"
    assert vip.items[0] == index["caviar"]
    assert vip.items[1] == index["champagne"]
    assert len(set(vip.items.tolist())) == 4 and -1 not in vip.items  # filled from global trending
    unknown = choose_list(model, None, 3, segment="new-segment", segment_scores=segments, trending=trend)
    assert unknown.source == "trending"
    assert unknown.items.tolist() == np.argsort(-trend, kind="stable")[:3].tolist()
    default = choose_list(model, None, 2)
    assert default.source == "trending"


def test_short_history_blends_content_and_long_history_is_personalized() -> None:
    shop = planted_shop()
    assoc = MODEL_REGISTRY["assoc"]().fit(shop.data, shop.catalog)
    content = MODEL_REGISTRY["content"]().fit(shop.data, shop.catalog)
    one = shop.histories[[0]]
    short = choose_list(assoc, one, 4, content=content, min_history=3)
    assert short.source == "content"
    assert shop.targets[0] <= set(short.items.tolist())  # the partner (rules) and the cold item (content)
    plain = choose_list(assoc, one, 4, content=content, min_history=2)
    assert plain.source == "personalized"
    assert not set(plain.items.tolist()) & set(one.indices.tolist())
    assert len(set(plain.items.tolist())) == 4  # rules know one item; trending fills the rest


def test_seen_items_stay_out_unless_asked_and_short_catalogs_pad() -> None:
    data = _data()
    model = MODEL_REGISTRY["buy_again"]().fit(data)
    history = model.history_of({"tea": 2.0, "bread": 1.0})
    kept = choose_list(model, history, 2, exclude_seen=False, min_history=1)
    assert kept.source == "personalized"
    assert kept.items.tolist() == [data.item_index()["tea"], data.item_index()["bread"]]
    whole = choose_list(model, history, 10)
    assert (whole.items == -1).sum() == 10 - (data.n_items - 2)
    with pytest.raises(ValueError):
        choose_list(model, sp.csr_matrix((1, 3)), 2)
