"""Serving a trained version of the planted shop: rules, fallbacks, reasons, live feedback, concurrency."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from patron.errors import NotFoundError
from patron.recs.rules import REASONS, RecRequest
from patron.recs.serving import RecEngine, RecList
from patron.recs.training import train_version
from patron.runtime import Runtime
from tests.recs._serving_fixtures import AS_OF, shop_runtime, shop_version

__all__ = ["shop_runtime", "shop_version"]


@pytest.fixture
def engine(shop_version: Path) -> RecEngine:
    return RecEngine.open(shop_version)


def ids(rec: RecList) -> list[str]:
    return [item.item_id for item in rec.items]


def test_member_list_obeys_availability_and_purchase_rules(engine: RecEngine) -> None:
    repeat = json.loads((engine.version_dir / "repeat_categories.json").read_text())
    assert repeat["categories"] == {"coffee": 1.0}  # every coffee buyer bought the same coffee twice; sofas once
    for n in range(40):
        rec = engine.for_member(f"m{n:02d}", RecRequest(k=30))
        assert rec.source == "personalized"
        assert f"s{n % 10:02d}" not in ids(rec)  # bought sofa: excluded
        assert "c07" not in ids(rec)  # out of stock (latest count 0)
        assert len(set(ids(rec))) == len(ids(rec))
        assert all(item.reason in REASONS for item in rec.items)
    # a member's own coffee (repeat category) may come back: c00's neighbours include it for m10 (same coffee)
    assert "c00" in ids(engine.for_member("m10", RecRequest(k=30)))
    assert "c00" not in ids(engine.for_member("m10", RecRequest(k=30, exclude=["c00"])))


def test_request_filters_and_pages(engine: RecEngine) -> None:
    books = engine.for_member("m00", RecRequest(categories=["books"], k=5))
    assert books.items and all(i.startswith("b") for i in ids(books))
    cheap = engine.for_member("m00", RecRequest(price_max=12, k=30))
    assert all(engine.facts.price[engine.item_index[i]] <= 12 for i in ids(cheap))
    only = engine.for_member("m00", RecRequest(whitelist=["b01", "s03", "zz"], k=5))
    assert set(ids(only)) <= {"b01", "s03"}
    first, second = (engine.for_member("m00", RecRequest(k=2, page=p)) for p in (1, 2))
    assert first.has_more and not set(ids(first)) & set(ids(second))
    everything = engine.for_member("m00", RecRequest(k=200))
    assert not everything.has_more


def test_hidden_items_disappear_at_once(engine: RecEngine) -> None:
    top = ids(engine.for_member("m00", RecRequest(k=1)))[0]
    engine.set_availability(top, hidden=True)
    assert top not in ids(engine.for_member("m00", RecRequest(k=30)))
    engine.set_availability(top, hidden=False)
    assert ids(engine.for_member("m00", RecRequest(k=1))) == [top]


def test_unknown_members_get_segment_then_overall_trending(engine: RecEngine) -> None:
    in_segment = engine.for_member("stranger", segment="champions")
    assert in_segment.source == "trending_in_segment"
    assert in_segment.items[0].reason == "popular_in_segment"
    assert in_segment.items[0].reason_args == {"segment": "champions"}
    overall = engine.for_member("stranger")
    assert overall.source == "trending" and overall.items and overall.items[0].reason == "trending"


def test_feedback_changes_the_list_without_retraining(engine: RecEngine) -> None:
    assert engine.for_member("newcomer").source == "trending"
    engine.with_feedback("newcomer", "b03", "view")
    after = engine.for_member("newcomer")
    assert after.source == "personalized"
    assert after.items[0].reason == "because_you_viewed" and after.items[0].reason_args["item_id"] == "b03"
    before = ids(engine.for_member("m00", RecRequest(k=5)))
    assert engine.with_feedback("m00", "b05", "cart") == 3.0
    assert engine.with_feedback("m00", "b05", "cart") == 6.0
    assert ids(engine.for_member("m00", RecRequest(k=5))) != before
    engine.with_feedback("m00", "s03", "purchase")
    assert "s03" not in ids(engine.for_member("m00", RecRequest(k=30)))
    with pytest.raises(NotFoundError):
        engine.with_feedback("m00", "no-such-item", "view")


def test_extra_history_is_scored_but_not_kept(engine: RecEngine) -> None:
    plain = ids(engine.for_member("m00", RecRequest(k=5)))
    nudged = ids(engine.for_member("m00", RecRequest(k=5), extra_history={"b07": 20.0}))
    assert nudged != plain
    assert ids(engine.for_member("m00", RecRequest(k=5))) == plain


def test_item_lists(engine: RecEngine) -> None:
    together = engine.bought_together("c00")
    # c00's buyers m00, m10, m20, m30 all bought sofa s00 and nobody else did
    assert together.items[0].item_id == "s00" and together.items[0].score == pytest.approx(1.0)
    assert together.items[0].reason == "bought_together" and together.items[0].reason_args["item_id"] == "c00"
    similar = engine.similar("b01")
    assert "b01" not in ids(similar) and similar.items[0].reason == "similar_to"
    session = engine.for_session(["b01", "b02"])
    assert session.source == "session" and not {"b01", "b02"} & set(ids(session))
    with pytest.raises(NotFoundError):
        engine.similar("no-such-item")


def test_diversity_spreads_categories(engine: RecEngine) -> None:
    def categories(rec: RecList) -> int:
        return len({engine.facts.category_of(engine.item_index[i]) for i in ids(rec)})

    plain = engine.for_member("m00", RecRequest(k=4))
    diverse = engine.for_member("m00", RecRequest(k=4, diversity=0.3))
    assert categories(diverse) >= categories(plain)
    assert ids(engine.for_member("m00", RecRequest(k=4, diversity=1.0))) == ids(plain)


def test_concurrent_feedback_is_not_lost(engine: RecEngine) -> None:
    def click() -> None:
        for _ in range(50):
            engine.with_feedback("busy", "b09", "view")
            engine.for_member("busy", RecRequest(k=3))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.with_feedback("busy", "b09", "view", weight=0.0) == 200.0


def test_opening_a_missing_version_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        RecEngine.open(tmp_path / "nope")


def test_bought_together_falls_back_to_common_buyers(shop_runtime: Runtime) -> None:
    engine = RecEngine.open(train_version(shop_runtime, "assoc", {}, as_of=AS_OF))
    together = engine.bought_together("c00")
    # no order of the shop holds two products, so the model has no rule for c00: common buyers decide
    assert together.items[0].item_id == "s00" and together.items[0].reason == "bought_together"


def test_reasons_compare_a_page_with_the_strongest_fifty_anchors_only() -> None:
    import numpy as np

    from patron.recs.serving import REASON_ANCHORS, _strongest

    items = np.arange(0, 240, 2, dtype=np.int64)  # 120 bought items, sorted
    cols = np.arange(0, 240, 1, dtype=np.int64)  # the history holds them (and the odd items between)
    weights = np.linspace(1.0, 2.0, len(cols)).astype(np.float32)  # later columns weigh more
    weights[10] = 50.0  # item 10: an early item with a strong weight
    kept = _strongest(items, cols, weights)
    assert len(kept) == REASON_ANCHORS == 50 and kept.tolist() == sorted(kept.tolist())
    assert 10 in kept.tolist() and set(kept.tolist()) - {10} == set(items[-49:].tolist())
    missing = np.arange(1000, 1100, dtype=np.int64)  # not in the history: weight 0, lowest indexes first
    assert _strongest(missing, cols, weights).tolist() == list(range(1000, 1050))
    assert _strongest(items[:5], cols, weights).tolist() == items[:5].tolist()  # few anchors: all of them
