"""The published MovieLens 100k protocol: a stratified random 75/25 split per user.

The protocol of the Microsoft "recommenders" benchmark, reproduced exactly so
that figures compare with its published table: ``u.data`` in file order; every
rating is a positive interaction (its value ignored); per user (users
ascending), that user's rows shuffled with pandas
``DataFrame.sample(frac=1, random_state=42)`` and the first ``round(0.75 * n)``
rows (Python's round) go to train. The result has 74,992 train rows, 25,008
test rows and 1,649 train items. Every train item is ranked for every user,
excluding the user's train items; test items never seen in train still count
as relevant (so they lower recall and NDCG, as in the published table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from patron.recs.base import Interactions

__all__ = ["MovieLensSplit", "published_split", "read_ratings", "split_frame"]

TRAIN_SHARE = 0.75
SEED = 42


@dataclass(frozen=True)
class MovieLensSplit:
    """Train interactions and each user's relevant test items.

    ``train`` holds the train rows (weight 1, the rating's unix time as the
    event time) over the train items; ``relevant`` maps a user id to the item
    ids of their test rows, including items that never appear in train.
    """

    train: Interactions
    relevant: dict[str, frozenset[str]]
    train_rows: int
    test_rows: int


def read_ratings(path: str | Path) -> pd.DataFrame:
    """``u.data`` (tab-separated, optionally gzipped) as user, item, rating, time, in file order."""
    return pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["user", "item", "rating", "time"],
        dtype={"user": np.int64, "item": np.int64, "rating": np.int64, "time": np.int64},
    )


def split_frame(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published per-user 75/25 split of a ratings frame (train, test)."""
    train_parts: list[pd.DataFrame] = []
    test_parts: list[pd.DataFrame] = []
    for _, rows in ratings.groupby("user", sort=True):
        shuffled = rows.sample(frac=1, random_state=SEED)
        cut = round(TRAIN_SHARE * len(shuffled))
        train_parts.append(shuffled.iloc[:cut])
        test_parts.append(shuffled.iloc[cut:])
    return pd.concat(train_parts, ignore_index=True), pd.concat(test_parts, ignore_index=True)


def published_split(path: str | Path, *, validation: bool = False) -> MovieLensSplit:
    """Read ``u.data`` and split it by the published protocol.

    With ``validation``, the train rows are split once more by the same
    protocol and the result is (train of train, validation): the split on
    which hyperparameters are chosen without looking at the test rows.
    """
    train, test = split_frame(read_ratings(path))
    if validation:
        train, test = split_frame(train)
    interactions = Interactions.from_events(
        train["user"].astype(str).to_numpy(),
        train["item"].astype(str).to_numpy(),
        np.ones(len(train), dtype=np.float32),
        train["time"].to_numpy(np.float64),
    )
    relevant: dict[str, frozenset[str]] = {}
    for user, rows in test.groupby("user", sort=True):
        relevant[str(user)] = frozenset(rows["item"].astype(str).tolist())
    return MovieLensSplit(interactions, relevant, len(train), len(test))
