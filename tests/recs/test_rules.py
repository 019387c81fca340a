"""Serving rules: availability and request filters, repeat-purchase categories, MMR and reasons."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.recs.base import ItemCatalog
from patron.recs.rules import (
    ItemFacts,
    RecRequest,
    _cosines,
    apply_rules,
    compile_rules,
    cosine_affinity,
    explain,
    learn_repeat_categories,
    mmr,
    normalized_vectors,
    repeat_purchase_shares,
    within,
)

IDS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture
def facts() -> ItemFacts:
    catalog = ItemCatalog(
        np.asarray(IDS),
        np.asarray([f"title {i}" for i in IDS], dtype=object),
        np.asarray(["tea", "tea", "sofa", "sofa", "", "books"], dtype=object),
        np.asarray([""] * 6, dtype=object),
        np.asarray([3.0, 5.0, 500.0, 800.0, np.nan, 12.0]),
    )
    return ItemFacts.from_catalog(
        catalog,
        in_stock=np.asarray([True, True, True, True, True, False]),
        hidden=np.asarray([False, False, False, True, False, False]),
    )


INDEX = {v: k for k, v in enumerate(IDS)}


def allowed(facts: ItemFacts, request: RecRequest, **kwargs: object) -> list[str]:
    rules = compile_rules(facts, request, INDEX, **kwargs)  # type: ignore[arg-type]
    return [IDS[i] for i in np.flatnonzero(apply_rules(facts, rules))]


def test_availability_flags_always_apply(facts: ItemFacts) -> None:
    assert allowed(facts, RecRequest()) == ["a", "b", "c", "e"]  # d hidden, f out of stock
    assert facts.servable.tolist() == [True, True, True, False, True, False]


def test_request_filters(facts: ItemFacts) -> None:
    assert allowed(facts, RecRequest(categories=["tea", "sofa"])) == ["a", "b", "c"]
    assert allowed(facts, RecRequest(exclude_categories=["tea"])) == ["c", "e"]
    assert allowed(facts, RecRequest(price_min=4, price_max=600)) == ["b", "c"]  # unknown price never passes
    assert allowed(facts, RecRequest(exclude=["a", "zz"])) == ["b", "c", "e"]
    assert allowed(facts, RecRequest(whitelist=["c", "d", "e", "zz"])) == ["c", "e"]
    assert allowed(facts, RecRequest(whitelist=[])) == []


def test_purchased_items_excluded_unless_repeat_category(facts: ItemFacts) -> None:
    bought = np.asarray([0, 2])  # a (tea), c (sofa)
    repeat = np.zeros(len(facts.categories), dtype=bool)
    repeat[facts.category_codes(["tea"])] = True
    assert allowed(facts, RecRequest(), purchased=bought, repeat=repeat) == ["a", "b", "e"]
    assert allowed(facts, RecRequest(), purchased=bought) == ["b", "e"]
    assert allowed(facts, RecRequest(exclude_purchased=False), purchased=bought) == ["a", "b", "c", "e"]


def test_request_validation() -> None:
    with pytest.raises(ValidationError, match="price_min is above price_max"):
        RecRequest(price_min=10, price_max=5)
    with pytest.raises(ValidationError):
        RecRequest(k=0)
    with pytest.raises(ValidationError):
        RecRequest(diversity=1.5)


def test_repeat_categories_learned_from_repeat_buyers(facts: ItemFacts) -> None:
    # 30 members: each buys tea "a" twice (members 0..9) or once (10..29) -> tea share 10/30;
    # every member buys sofa "c" once -> share 0; only 5 members buy books -> too few buyers.
    rows, cols, counts = [], [], []
    for m in range(30):
        rows += [m, m]
        cols += [0, 2]
        counts += [2 if m < 10 else 1, 1]
    for m in range(5):
        rows.append(m)
        cols.append(5)
        counts.append(3)
    purchases = sp.csr_matrix((counts, (rows, cols)), shape=(30, 6))
    shares = repeat_purchase_shares(purchases, facts)
    assert shares["tea"] == (30, pytest.approx(1 / 3))
    assert shares["sofa"] == (30, 0.0) and shares["books"] == (5, 1.0)
    assert learn_repeat_categories(purchases, facts, threshold=0.3, min_buyers=20) == {"tea": pytest.approx(1 / 3)}
    assert learn_repeat_categories(purchases, facts, threshold=0.5, min_buyers=20) == {}
    assert set(learn_repeat_categories(purchases, facts, threshold=0.3, min_buyers=5)) == {"tea", "books"}


def test_facts_round_trip_through_arrow(facts: ItemFacts) -> None:
    back = ItemFacts.from_arrow(facts.to_arrow())
    assert isinstance(facts.to_arrow(), pa.Table)
    assert back.item_ids.tolist() == IDS
    assert [back.category_of(i) for i in range(6)] == ["tea", "tea", "sofa", "sofa", "", "books"]
    assert back.servable.tolist() == facts.servable.tolist()
    np.testing.assert_array_equal(back.price, facts.price)


def test_mmr_trades_score_for_variety() -> None:
    candidates = np.asarray([0, 1, 2, 3])
    scores = np.asarray([1.0, 0.9, 0.8, 0.1])
    categories = np.asarray([0, 0, 0, 1])
    assert mmr(candidates, scores, 4, 1.0, categories=categories).tolist() == [0, 1, 2, 3]
    # lam 0.5: after item 0, item 3 (another category) beats the near-duplicates 1 and 2
    assert mmr(candidates, scores, 2, 0.5, categories=categories).tolist() == [0, 3]
    vectors = normalized_vectors(np.asarray([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.7, 0.7]]))
    assert mmr(candidates, scores, 2, 0.5, vectors=vectors).tolist() == [0, 2]
    assert mmr(np.zeros(0, dtype=np.int64), np.zeros(0), 3, 0.5).tolist() == []


def test_reasons_name_the_most_similar_bought_or_viewed_item(facts: ItemFacts) -> None:
    vectors = normalized_vectors(
        np.asarray([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    )
    reasons = explain(
        np.asarray([1, 3, 4, 5]), facts, cosine_affinity(vectors), bought=np.asarray([0, 2]), viewed=np.asarray([4])
    )
    assert reasons[0] == ("because_you_bought", {"item_id": "a", "title": "title a"})
    assert reasons[1] == ("because_you_bought", {"item_id": "c", "title": "title c"})
    assert reasons[2] == ("because_you_viewed", {"item_id": "e", "title": "title e"})
    assert reasons[3] == ("for_you", {})  # no similar anchor at all
    only_viewed = explain(
        np.asarray([1]), facts, cosine_affinity(vectors), bought=np.zeros(0, dtype=np.int64), viewed=np.asarray([0])
    )
    assert only_viewed == [("because_you_viewed", {"item_id": "a", "title": "title a"})]


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 60)),
    density=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**32 - 1),
    a_count=st.integers(0, 12),
    b_count=st.integers(0, 12),
)
def test_sparse_cosines_equal_scipys_product(
    shape: tuple[int, int], density: float, seed: int, a_count: int, b_count: int
) -> None:
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, format="csr", dtype=np.float32, random_state=seed)
    a = rng.integers(0, shape[0], a_count)  # repeated rows included
    b = rng.integers(0, shape[0], b_count)
    expected = (m[a] @ m[b].T).toarray() if a_count and b_count else np.zeros((a_count, b_count))
    got = _cosines(m, a, b)
    assert got.shape == (a_count, b_count) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_reasons_from_sparse_vectors_match_dense_ones(facts: ItemFacts) -> None:
    dense = np.asarray([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    items, bought, viewed = np.asarray([1, 3, 4, 5]), np.asarray([0, 2]), np.asarray([4])
    from_dense = explain(items, facts, cosine_affinity(normalized_vectors(dense)), bought=bought, viewed=viewed)
    from_sparse = explain(
        items, facts, cosine_affinity(normalized_vectors(sp.csr_matrix(dense))), bought=bought, viewed=viewed
    )
    assert from_sparse == from_dense
    assert explain(items, facts, None, bought=bought, viewed=viewed) == [("for_you", {})] * 4


@settings(max_examples=200)
@given(
    values=st.lists(st.integers(0, 40), max_size=30),
    items=st.lists(st.integers(0, 40), max_size=30),
)
def test_within_is_numpys_membership_test(values: list[int], items: list[int]) -> None:
    sorted_items = np.unique(np.asarray(items, dtype=np.int64))  # what compile_rules keeps: sorted, distinct
    got = within(np.asarray(values, dtype=np.int64), sorted_items)
    np.testing.assert_array_equal(got, np.isin(values, items))
