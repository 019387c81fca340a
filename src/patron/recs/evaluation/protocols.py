"""Train/test protocols, and the validation split carved from the training part with the same protocol.

- ``ms-stratified``: the published MovieLens protocol (Microsoft "recommenders"
  benchmark): events in file order; per user (users ascending) that user's rows
  shuffled with pandas ``DataFrame.sample(frac=1, random_state=42)`` and the
  first ``round(0.75 * n)`` (Python rounding) go to train. On MovieLens 100k:
  74,992 train rows, 25,008 test rows, 1,649 train items.
- ``random``: the same per-user holdout with a seeded NumPy generator and any
  test fraction.
- ``temporal``: a global cut date (events before it train, events on or after
  it test; online-retail's reference cut is 2011-11-09), or without a cut each
  user's last active day held out (taobao's reference protocol).

Test users are users present in train. With ``repeats=True`` (counted) every
distinct test item is relevant and the user's train items stay rankable; with
``repeats=False`` (new items only) relevant items are test items the user did
not have in train, and the user's train items are excluded from the ranking.
Test items absent from train still count as relevant (they can never be hit).
The validation split applies the same protocol to the training events: the
random protocols split the training rows again, a global cut moves back by the
length of the test window, and the last-day protocol holds out each user's last
training day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.errors import ValidationError
from patron.recs.base import IntArray, Interactions, ItemCatalog
from patron.recs.evaluation.datasets import EventLog

__all__ = ["DEFAULT_CUTS", "PROTOCOLS", "Protocol", "Split", "make_split", "split_events"]

Protocol = Literal["ms-stratified", "random", "temporal"]
PROTOCOLS: tuple[Protocol, ...] = ("ms-stratified", "random", "temporal")
#: The reference cut of data sets evaluated with a global cut date.
DEFAULT_CUTS = {"online-retail": "2011-11-09"}


@dataclass(frozen=True)
class Split:
    """A train matrix and, per user, the relevant test items.

    ``relevant`` has a row per train user and a column per train item followed
    by one column per test item unknown to train; ``users`` are the train rows
    that are evaluated (at least one relevant item).
    """

    name: str
    protocol: Protocol
    repeats: bool
    train: Interactions
    relevant: sp.csr_matrix
    users: IntArray
    catalog: ItemCatalog | None
    train_events: pd.DataFrame
    test_rows: int

    @property
    def exclude_seen(self) -> bool:
        return not self.repeats

    def validation(self) -> Split:
        """The split carved from this split's training events with the same protocol."""
        if self.protocol == "temporal" and self.cut is not None:
            window = self.window
            events = self.train_events
            cut = pd.Timestamp(self.cut) - window
            return _build(f"{self.name}/validation", events, self.protocol, self.repeats, self.catalog, cut, window)
        return make_split(
            EventLog(f"{self.name}/validation", self.train_events, self.catalog),
            self.protocol,
            repeats=self.repeats,
            seed=self.seed,
            test_fraction=self.test_fraction,
        )

    def validation_folds(self, n: int) -> list[Split]:
        """``n`` validation splits: :meth:`validation` first.

        Then seeded random holdouts of the training events (for the random
        protocols) or the last fold's own validation, one window further back
        (temporal).
        """
        folds = [self.validation()]
        while len(folds) < n:
            if self.protocol == "temporal":
                folds.append(folds[-1].validation())
                continue
            log = EventLog(f"{self.name}/validation{len(folds)}", self.train_events, self.catalog)
            seed = self.seed + len(folds)
            folds.append(make_split(log, "random", repeats=self.repeats, seed=seed, test_fraction=self.test_fraction))
        return folds

    # Filled in by make_split: the global cut (None: each user's last day) and the test window's length.
    cut: pd.Timestamp | None = None
    window: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(0))
    seed: int = 42
    test_fraction: float = 0.25


def split_events(
    events: pd.DataFrame,
    protocol: Protocol,
    *,
    cut: pd.Timestamp | None = None,
    seed: int = 42,
    test_fraction: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut an event frame (file order kept) into train and test rows by ``protocol``."""
    if protocol == "ms-stratified":
        mask = _stratified_pandas(events)
    elif protocol == "random":
        mask = _stratified_numpy(events, seed, test_fraction)
    elif protocol == "temporal":
        if cut is not None:
            mask = (events["day"] < cut).to_numpy()
        else:
            last = events.groupby("user")["day"].transform("max")
            mask = (events["day"] < last).to_numpy()
    else:
        raise ValidationError(f"unknown protocol {protocol!r}: one of {', '.join(PROTOCOLS)}", field="protocol")
    return events[mask], events[~mask]


def make_split(
    log: EventLog,
    protocol: Protocol,
    *,
    repeats: bool | None = None,
    cut: str | None = None,
    seed: int = 42,
    test_fraction: float = 0.25,
) -> Split:
    """Split a data set by ``protocol``.

    ``repeats`` defaults to True for ``temporal`` and False otherwise; ``cut``
    (``YYYY-MM-DD``) defaults to the data set's reference cut for ``temporal``
    (none means each user's last active day).
    """
    if protocol not in PROTOCOLS:
        raise ValidationError(f"unknown protocol {protocol!r}: one of {', '.join(PROTOCOLS)}", field="protocol")
    if not 0 < test_fraction < 1:
        raise ValidationError("the test fraction must lie between 0 and 1", field="test_fraction")
    counted = protocol == "temporal" if repeats is None else repeats
    if protocol != "temporal":
        train, test = split_events(log.events, protocol, seed=seed, test_fraction=test_fraction)
        result = _assemble(log.name, train, test, protocol, counted, log.catalog)
        return _with(result, seed=seed, test_fraction=test_fraction)
    cut_text = cut if cut is not None else DEFAULT_CUTS.get(log.name)
    cut_at = None if cut_text is None else pd.Timestamp(cut_text)
    window = pd.Timedelta(0)
    if cut_at is not None:
        window = log.events["day"].max() - cut_at + pd.Timedelta(days=1)
    return _build(log.name, log.events, protocol, counted, log.catalog, cut_at, window)


def _build(
    name: str,
    events: pd.DataFrame,
    protocol: Protocol,
    repeats: bool,
    catalog: ItemCatalog | None,
    cut: pd.Timestamp | None,
    window: pd.Timedelta,
) -> Split:
    train, test = split_events(events, protocol, cut=cut)
    if train.empty:
        raise ValidationError(f"{name}: no training events before {cut}", field="cut")
    return _with(_assemble(name, train, test, protocol, repeats, catalog), cut=cut, window=window)


def _with(split: Split, **changes: Any) -> Split:
    values = {**split.__dict__, **changes}
    return Split(**values)


def _assemble(
    name: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    protocol: Protocol,
    repeats: bool,
    catalog: ItemCatalog | None,
) -> Split:
    data = Interactions.from_events(
        train["user"].to_numpy(), train["item"].to_numpy(), train["weight"].to_numpy(), train["time"].to_numpy()
    )
    user_index = data.user_index()
    item_index = data.item_index()
    pairs = test[["user", "item"]].drop_duplicates()
    pairs = pairs[pairs["user"].isin(user_index)]
    rows = pairs["user"].map(user_index).to_numpy(dtype=np.int64)
    known = pairs["item"].map(item_index)
    unseen = pd.Index(pairs.loc[known.isna(), "item"].unique())
    cols = known.fillna(-1).to_numpy(dtype=np.int64)
    extra = pairs["item"].map(lambda i: unseen.get_loc(i) if i in unseen else -1).to_numpy(dtype=np.int64)
    cols = np.where(cols >= 0, cols, data.n_items + extra)
    relevant = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(data.n_users, data.n_items + len(unseen))
    )
    if not repeats:
        seen = sp.csr_matrix(data.matrix, copy=True)
        seen.data[:] = 1.0
        seen.resize(relevant.shape)
        relevant = relevant - relevant.multiply(seen)
        relevant.eliminate_zeros()
    relevant = relevant.tocsr()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
    aligned = None if catalog is None else catalog.aligned(data.item_ids)
    return Split(name, protocol, repeats, data, relevant, users, aligned, train, len(test))


def _stratified_pandas(events: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Train mask of the published protocol, using pandas' own shuffle for each user."""
    mask = np.zeros(len(events), dtype=bool)
    positions = pd.Series(np.arange(len(events)), index=events.index)
    for _, group in events.groupby("user", sort=True):
        shuffled = group.sample(frac=1, random_state=42)
        n_train = round(0.75 * len(group))
        mask[positions.loc[shuffled.index[:n_train]].to_numpy()] = True
    return mask


def _stratified_numpy(events: pd.DataFrame, seed: int, test_fraction: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Train mask of a seeded per-user holdout of ``test_fraction`` of each user's rows."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(events), dtype=bool)
    codes, _ = pd.factorize(events["user"], sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds):
        shuffled = rng.permutation(rows)
        mask[shuffled[: round((1 - test_fraction) * len(rows))]] = True
    return mask
