"""Fixtures of the recommendation tests: planted synthetic data, the MovieLens split, NDCG@10."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before implicit's BLAS check

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from patron.recs.base import Interactions, ItemCatalog
from patron.recs.movielens import MovieLensSplit, published_split
from tests.conftest import shared_data

N_GROUPS = 4
ITEMS_PER_GROUP = 15
N_POPULAR = 6
USERS_PER_GROUP = 30
DAY = 86_400.0
START = 1_700_000_000.0


@dataclass(frozen=True)
class Planted:
    """Synthetic shop: every user likes one group of items; a few items are popular with everyone.

    Each user bought six of their group's items (the first, the favourite, five
    times) and three popular items. ``held_out`` is what they buy next: two
    more items of their group and their favourite again.
    """

    train: Interactions
    catalog: ItemCatalog
    held_out: dict[str, set[str]]
    group_of_item: dict[str, int]
    group_of_user: dict[str, int]


def _planted() -> Planted:
    rng = np.random.default_rng(7)
    group_items = [[f"g{g}i{k:02d}" for k in range(ITEMS_PER_GROUP)] for g in range(N_GROUPS)]
    popular = [f"pop{k}" for k in range(N_POPULAR)]
    users, items, weights, times = [], [], [], []
    held_out: dict[str, set[str]] = {}
    group_of_user: dict[str, int] = {}
    for g in range(N_GROUPS):
        for n in range(USERS_PER_GROUP):
            user = f"u{g}_{n:02d}"
            group_of_user[user] = g
            liked = rng.choice(ITEMS_PER_GROUP, size=8, replace=False)
            chosen = [group_items[g][k] for k in liked]
            picks = chosen[:-2] + list(rng.choice(popular, size=3, replace=False))
            bought = [float(rng.integers(1, 4)) for _ in picks]
            bought[0] = 5.0  # the favourite, bought again in the held-out period
            held_out[user] = {*chosen[-2:], chosen[0]}
            for item, weight in zip(picks, bought, strict=True):
                users.append(user)
                items.append(item)
                weights.append(weight)
                times.append(START + float(rng.integers(0, 60)) * DAY)
    train = Interactions.from_events(users, items, weights, times)
    ids = train.item_ids
    group_of_item = {i: (int(i[1]) if i.startswith("g") else -1) for i in ids.tolist()}
    catalog = ItemCatalog(
        item_ids=ids,
        title=np.asarray([f"Item {i}" for i in ids], dtype=object),
        category=np.asarray([f"cat{group_of_item[i]}" for i in ids], dtype=object),
        brand=np.asarray([f"brand{group_of_item[i] % 2}" for i in ids], dtype=object),
        price=np.linspace(5.0, 50.0, len(ids)),
    )
    return Planted(train, catalog, held_out, group_of_item, group_of_user)


@pytest.fixture(scope="session")
def planted() -> Planted:
    """The planted synthetic data (deterministic)."""
    return _planted()


@pytest.fixture(scope="session")
def movielens() -> MovieLensSplit:
    """MovieLens 100k split by the published protocol; counts as the reference states."""
    split = published_split(shared_data("movielens_100k/u.data.gz"))
    assert split.train_rows == 74_992
    assert split.test_rows == 25_008
    assert split.train.n_items == 1_649
    assert split.train.n_users == 943
    return split


def ndcg_at_10(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str] | frozenset[str]]) -> float:
    """Mean NDCG@10: binary gains, log2 discounts, ideal DCG over min(10, #relevant) hits."""
    total = 0.0
    for items, rel in zip(ranked, relevant, strict=True):
        dcg = sum(1.0 / np.log2(rank + 2) for rank, item in enumerate(items[:10]) if item in rel)
        ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(10, len(rel))))
        total += dcg / ideal if ideal > 0 else 0.0
    return total / len(ranked)
