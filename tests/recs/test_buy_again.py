"""Buy again: own history first, by weight and recency; popularity for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from patron.recs.base import Interactions, load_model
from patron.recs.models.buy_again import BuyAgain

DAY = 86_400.0
# (user, item, weight, day)
EVENTS = [
    ("u1", "tea", 3.0, 1), ("u1", "jam", 1.0, 100), ("u1", "mug", 1.0, 100),
    ("u2", "jam", 1.0, 50), ("u2", "bread", 1.0, 60),
    ("u3", "jam", 1.0, 70), ("u3", "bread", 2.0, 80), ("u3", "mug", 1.0, 90),
    ("u4", "bread", 1.0, 95), ("u4", "honey", 1.0, 99),
]  # fmt: skip


def _data() -> Interactions:
    users, items, weights, days = zip(*EVENTS, strict=True)
    return Interactions.from_events(users, items, weights, [d * DAY for d in days])


def test_own_items_by_weight_then_the_rest_by_popularity() -> None:
    model = BuyAgain().fit(_data())
    ranked = [item for item, _ in model.recommend(["u1"], k=5, exclude_seen=False)[0]]
    # tea (3) first; jam (3 buyers) and mug (2 buyers) tie on weight 1; then bread (3 buyers), honey (1).
    assert ranked == ["tea", "jam", "mug", "bread", "honey"]


def test_with_exclude_seen_it_is_popularity() -> None:
    model = BuyAgain().fit(_data())
    buyers: dict[str, set[str]] = {}
    for user, item, _, _ in EVENTS:
        buyers.setdefault(item, set()).add(user)
    unseen = sorted((i for i in buyers if i not in {"jam", "bread"}), key=lambda i: (-len(buyers[i]), i))
    assert [item for item, _ in model.recommend(["u2"], k=3)[0]] == unseen


def test_recency_decay_prefers_recent_purchases() -> None:
    decayed = BuyAgain(half_life_days=10.0).fit(_data())
    ranked = [item for item, _ in decayed.recommend(["u1"], k=3, exclude_seen=False)[0]]
    assert ranked[0] == "jam"  # tea's 3 purchases were ~10 half-lives ago
    history = decayed.history_matrix[[decayed._user_index["u1"]]].tolil()
    history[0, decayed._item_index["honey"]] = 1.0  # folded in now: no decay
    rows = np.asarray([decayed._user_index["u1"]])
    scores = decayed.scores(history.tocsr(), rows)[0]
    assert scores[decayed._item_index["honey"]] >= 1.0
    assert scores[decayed._item_index["tea"]] < 0.01


def test_save_load_and_empty_history(tmp_path: Path) -> None:
    model = BuyAgain(half_life_days=30.0).fit(_data())
    loaded = load_model(model.save(tmp_path / "buy-again"))
    rows = np.arange(4)
    hist = model.histories_for(rows)
    np.testing.assert_array_equal(loaded.scores(hist, rows), model.scores(hist, rows))
    empty = model.recommend(["stranger"], k=2)[0]
    assert [item for item, _ in empty] == ["bread", "jam"]
