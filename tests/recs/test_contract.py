"""The one contract every registered recommendation model keeps (models added later join automatically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import Recommender, load_model
from patron.recs.models import load_all
from tests.recs.conftest import Planted

MODELS = sorted(load_all())


def _fit(name: str, planted: Planted) -> Recommender:
    return load_all()[name]().fit(planted.train, planted.catalog)


@pytest.fixture(scope="module")
def fitted(planted: Planted) -> dict[str, Recommender]:
    return {name: _fit(name, planted) for name in MODELS}


def _some_users(planted: Planted) -> list[str]:
    return [u for u in planted.train.user_ids.tolist() if u.endswith(("_00", "_07", "_19"))]


@pytest.mark.parametrize("name", MODELS)
def test_recommend_returns_at_most_k_distinct_known_items_sorted_without_history(
    name: str, fitted: dict[str, Recommender], planted: Planted
) -> None:
    model = fitted[name]
    users = _some_users(planted)
    known = set(planted.train.item_ids.tolist())
    history = planted.train.matrix
    index = planted.train.user_index()
    for user, recs in zip(users, model.recommend(users, k=7), strict=True):
        items = [i for i, _ in recs]
        scores = [s for _, s in recs]
        assert len(items) <= 7
        assert len(set(items)) == len(items)
        assert set(items) <= known
        assert scores == sorted(scores, reverse=True)
        seen = {planted.train.item_ids[c] for c in history[index[user]].indices}
        assert not seen & set(items)


@pytest.mark.parametrize("name", MODELS)
def test_two_fits_give_the_same_scores(name: str, fitted: dict[str, Recommender], planted: Planted) -> None:
    again = _fit(name, planted)
    rows = np.arange(planted.train.n_users)
    first = fitted[name].scores(planted.train.matrix, rows)
    np.testing.assert_array_equal(first, again.scores(planted.train.matrix, rows))


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_give_identical_scores(
    name: str, fitted: dict[str, Recommender], planted: Planted, tmp_path: Path
) -> None:
    model = fitted[name]
    loaded = load_model(model.save(tmp_path / name))
    assert type(loaded) is type(model)
    assert loaded.params == model.params
    rows = np.arange(planted.train.n_users)
    np.testing.assert_array_equal(model.scores(planted.train.matrix, rows), loaded.scores(planted.train.matrix, rows))
    users = _some_users(planted)
    assert model.recommend(users, k=5) == loaded.recommend(users, k=5)


@pytest.mark.parametrize("name", MODELS)
def test_similar_items_exclude_the_item_and_are_known(name: str, fitted: dict[str, Recommender]) -> None:
    model = fitted[name]
    similar = model.similar_items("g1i03", k=5)
    assert len(similar) <= 5
    assert "g1i03" not in [i for i, _ in similar]
    assert {i for i, _ in similar} <= set(model.item_ids.tolist())
    if model.item_vectors() is None and type(model).similar_items is Recommender.similar_items:
        assert similar == []
    assert model.similar_items("no-such-item") == []


@pytest.mark.parametrize("name", MODELS)
def test_unknown_user_and_empty_history_give_a_list(name: str, fitted: dict[str, Recommender]) -> None:
    model = fitted[name]
    empty = sp.csr_matrix((1, len(model.item_ids)), dtype=np.float32)
    for recs in (model.recommend(["stranger"], k=5), model.recommend(["u0_00"], k=5, histories=empty)):
        assert len(recs) == 1
        assert len(recs[0]) <= 5
        assert {i for i, _ in recs[0]} <= set(model.item_ids.tolist())


@pytest.mark.parametrize("name", MODELS)
def test_new_feedback_changes_a_personalized_list(name: str, fitted: dict[str, Recommender]) -> None:
    """Heavy feedback on another group's items moves a personalized list at once, without a refit."""
    model = fitted[name]
    user = "u0_00"
    before = model.recommend([user], k=10, exclude_seen=False)[0]
    fitted_history = model.histories_for(np.asarray([model._user_index[user]]))
    feedback = model.history_of({f"g2i{k:02d}": 5.0 for k in range(15)})
    after = model.recommend([user], k=10, exclude_seen=False, histories=fitted_history + feedback)[0]
    if type(model).personalized:
        assert [i for i, _ in after] != [i for i, _ in before]
    else:
        assert after == before


def _hits_at_10(model: Recommender, planted: Planted) -> float:
    users = planted.train.user_ids.tolist()
    recs = model.recommend(users, k=10, exclude_seen=False)
    return float(np.mean([len({i for i, _ in r} & planted.held_out[u]) for u, r in zip(users, recs, strict=True)]))


@pytest.mark.parametrize("name", MODELS)
def test_personalized_models_beat_popularity_on_held_out_events(
    name: str, fitted: dict[str, Recommender], planted: Planted
) -> None:
    """Held out: two new items of the user's group and a repeat of their favourite; popularity knows neither."""
    if not type(fitted[name]).personalized:
        pytest.skip("not a personalized model")
    baseline = _hits_at_10(fitted["popularity"], planted)
    assert _hits_at_10(fitted[name], planted) > baseline + 0.5
