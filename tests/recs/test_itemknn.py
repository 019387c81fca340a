"""Item-kNN: a single served history scores exactly as the same row of a batch."""

from __future__ import annotations

import numpy as np
import pytest

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
