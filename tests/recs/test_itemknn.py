"""Item-kNN: a single served history scores exactly as the same row of a batch; reasons read S itself."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.recs.models.itemknn import ItemKnn
from tests.recs.conftest import Planted


@pytest.mark.parametrize("params", [{"similarity": "bm25"}, {"similarity": "cosine", "shrinkage": 2.0}])
def test_one_history_scores_bit_for_bit_as_its_batch_row(params: dict[str, object], planted: Planted) -> None:
    model = ItemKnn(**params).fit(planted.train)  # type: ignore[arg-type]
    histories = planted.train.matrix.copy()
    histories.data = histories.data * np.float32(1.37)  # weights the training never saw
    batch = model.scores(histories)
    for row in range(histories.shape[0]):
        one = model.scores(histories[row])
        assert one.shape == (1, histories.shape[1])
        np.testing.assert_array_equal(one[0], batch[row])
    empty = model.scores(histories[:1] * 0)
    assert not empty.any()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), item_count=st.integers(0, 15), anchor_count=st.integers(0, 20))
def test_reason_affinity_is_the_similarity_the_score_sums(seed: int, item_count: int, anchor_count: int) -> None:
    rng = np.random.default_rng(seed)
    model = ItemKnn()
    model.similarity = sp.random(30, 30, density=0.3, format="csr", dtype=np.float32, random_state=seed)
    items = rng.permutation(30)[:item_count]  # distinct, in no order
    anchors = rng.integers(0, 30, anchor_count)  # repeats allowed
    affinity = model.reason_affinity()
    assert affinity is not None
    got = affinity(items, anchors)
    assert got.shape == (item_count, anchor_count)
    np.testing.assert_array_equal(got, model.similarity.toarray()[np.ix_(anchors, items)].T)
