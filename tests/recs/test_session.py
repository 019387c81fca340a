"""Session item-kNN: similarities against brute force, recency weighting, fitted session order."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from patron.recs.base import Interactions, load_model
from patron.recs.models.session import SessionKNN, positions, recency_weights

# (session, time, item)
SESSIONS = [
    ("s1", 1, "A"), ("s1", 2, "B"), ("s1", 3, "A"),
    ("s2", 1, "A"), ("s2", 2, "B"),
    ("s3", 1, "C"), ("s3", 2, "D"),
    ("s4", 5, "D"), ("s4", 6, "C"), ("s4", 7, "E"),
    ("s5", 1, "B"), ("s5", 9, "E"),
]  # fmt: skip


def _data() -> Interactions:
    sessions, times, items = zip(*SESSIONS, strict=True)
    return Interactions.from_events(sessions, items, times=times)


def test_similarity_is_session_cosine_by_brute_force() -> None:
    model = SessionKNN(neighbors=0).fit(_data())
    holding: dict[str, set[str]] = {}
    for session, _, item in SESSIONS:
        holding.setdefault(item, set()).add(session)
    dense = model.similarity.toarray()
    for x, y in combinations(sorted(holding), 2):
        expected = len(holding[x] & holding[y]) / math.sqrt(len(holding[x]) * len(holding[y]))
        i, j = model._item_index[x], model._item_index[y]
        assert dense[i, j] == pytest.approx(expected)
        assert dense[j, i] == pytest.approx(expected)
    assert np.all(np.diag(dense) == 0)


def test_the_latest_items_weigh_most() -> None:
    model = SessionKNN(decay=0.5).fit(_data())
    a_then_c = model.history_of({"A": 1, "C": 2})  # C viewed last
    c_then_a = model.history_of({"C": 1, "A": 2})
    first = [item for item, _ in model.recommend(["visitor"], k=2, histories=a_then_c)[0]]
    second = [item for item, _ in model.recommend(["visitor"], k=2, histories=c_then_a)[0]]
    assert first[0] == "D"  # C's companion
    assert second[0] == "B"  # A's companion
    flat = SessionKNN(decay=1.0).fit(_data())
    s1, s2 = flat.scores(a_then_c), flat.scores(c_then_a)
    np.testing.assert_array_equal(s1, s2)


def test_recency_weights_follow_positions() -> None:
    model = SessionKNN().fit(_data())
    weights = recency_weights(model.history_of({"A": 1, "B": 3, "C": 2}), 0.5).toarray()[0]
    index = model._item_index
    assert weights[index["B"]] == 1.0
    assert weights[index["C"]] == 0.5
    assert weights[index["A"]] == 0.25


def test_fitted_sessions_keep_their_order() -> None:
    data = _data()
    order = positions(data).toarray()
    index, sessions = data.item_index(), data.user_index()
    # s1 saw A, B, A: A's last sighting is after B.
    assert order[sessions["s1"], index["B"]] == 1
    assert order[sessions["s1"], index["A"]] == 2
    assert order[sessions["s4"], index["D"]] == 1
    assert order[sessions["s4"], index["E"]] == 3
    model = SessionKNN(decay=0.5).fit(data)
    # s5 saw B, then E: E's companions C and D (0.5 each) beat B's A (0.816 * 0.5).
    assert [item for item, _ in model.recommend(["s5"], k=2)[0]] == ["C", "D"]


def test_neighbors_bound_each_item_and_save_round_trips(tmp_path: Path) -> None:
    model = SessionKNN(neighbors=1).fit(_data())
    assert np.diff(model.similarity.indptr).max() == 1
    assert model.similar_items("C", k=3)[0][0] == "D"
    loaded = load_model(model.save(tmp_path / "session"))
    history = model.history_of({"A": 1, "E": 2})
    np.testing.assert_array_equal(loaded.scores(history), model.scores(history))
    assert model.scores(model.history_of({})).sum() == 0
