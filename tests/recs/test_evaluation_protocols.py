"""Split protocols against the published counts (../shared/data/README.md) and their own invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.recs.evaluation.datasets import load_dataset
from patron.recs.evaluation.protocols import make_split
from patron.recs.movielens import published_split
from tests.conftest import shared_data


def _root() -> Path:
    return shared_data("movielens_100k").parent


def test_movielens_published_protocol_counts() -> None:
    # README: 74,992 train rows, 25,008 test rows, 1,649 train items; all 943 users evaluated
    split = make_split(load_dataset("movielens-100k", root=_root()), "ms-stratified")
    assert len(split.train_events) == 74_992
    assert split.test_rows == 25_008
    assert split.train.n_items == 1_649
    assert len(split.users) == 943
    # test items unseen in train still count: every test row is a relevant cell
    assert split.relevant.nnz == 25_008
    assert split.exclude_seen


def test_movielens_split_equals_the_independent_published_split() -> None:
    root = _root()
    ours = make_split(load_dataset("movielens-100k", root=root), "ms-stratified")
    theirs = published_split(shared_data("movielens_100k/u.data.gz"))
    assert theirs.train_rows == len(ours.train_events)
    for row in (0, 17, 500, 942):
        user = str(ours.train.user_ids[row])
        wanted = {str(i) for i in theirs.relevant[user]}
        columns = ours.relevant[row].indices
        known = ours.train.item_ids
        got = {str(known[c]) for c in columns if c < len(known)}
        assert got <= wanted and len(columns) == len(wanted)


def test_validation_split_is_carved_from_train_only() -> None:
    split = make_split(load_dataset("movielens-100k", root=_root()), "ms-stratified")
    validation = split.validation()
    assert len(validation.train_events) + validation.test_rows == len(split.train_events)
    train_pairs = set(zip(split.train_events["user"], split.train_events["item"], strict=True))
    val_pairs = set(zip(validation.train_events["user"], validation.train_events["item"], strict=True))
    assert val_pairs < train_pairs
    # roughly 75/25 again
    assert validation.test_rows == pytest.approx(0.25 * len(split.train_events), rel=0.01)


@pytest.mark.parametrize(("repeats", "customers"), [(True, 1_396), (False, 1_295)])
def test_online_retail_temporal_counts(repeats: bool, customers: int) -> None:
    log = load_dataset("online-retail", root=shared_data("online_retail").parent)
    split = make_split(log, "temporal", repeats=repeats)
    assert len(split.users) == customers
    assert split.cut == pd.Timestamp("2011-11-09")
    assert split.train_events["day"].max() < pd.Timestamp("2011-11-09")
    assert split.exclude_seen is (not repeats)
    if not repeats:
        # new items only: no relevant item is in the customer's own train history
        overlap = split.relevant[:, : split.train.n_items].multiply(split.train.matrix > 0)
        assert overlap.nnz == 0
    # the interaction weight counts distinct invoices
    assert float(split.train.matrix.max()) > 1
    validation = split.validation()
    assert validation.cut == pd.Timestamp("2011-11-09") - split.window
    assert validation.train_events["day"].max() < validation.cut


def test_taobao_holds_out_each_users_last_day() -> None:
    log = load_dataset("taobao", root=shared_data("taobao_userbehavior").parent)
    assert set(np.unique(log.events["weight"])) == {1.0, 2.0, 3.0, 4.0}
    split = make_split(log, "temporal")
    last_train = split.train_events.groupby("user")["day"].max()
    last_all = log.events.groupby("user")["day"].max()
    assert (last_train < last_all.loc[last_train.index]).all()
    assert split.repeats and len(split.users) > 700
    assert split.catalog is not None and split.catalog.category[0] != ""


def test_random_protocol_is_seeded_and_stratified(tmp_path: Path) -> None:
    rows = [(f"u{u}", f"i{i}") for u in range(20) for i in range(u % 7, u % 7 + 8)]
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(path, index=False)
    log = load_dataset(str(path))
    first = make_split(log, "random", seed=7)
    again = make_split(log, "random", seed=7)
    other = make_split(log, "random", seed=8)
    assert first.train_events.index.equals(again.train_events.index)
    assert not first.train_events.index.equals(other.train_events.index)
    per_user = first.train_events.groupby("user").size()
    assert (per_user == 6).all()  # round(0.75 * 8)
