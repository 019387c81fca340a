"""Event logs for offline evaluation: the public reference data sets and any CSV/Parquet file.

Every loader returns a :class:`EventLog`: one row per event with the columns
``user``, ``item`` (strings), ``weight`` (positive), ``time`` (seconds since
the epoch, UTC; 0 when the source has none) and ``day`` (the calendar day of
the event in the data set's time zone), plus item attributes where the source
has them (for content models and diversity).

- ``movielens-100k``: ``u.data`` in file order; every rating is one positive
  interaction of weight 1 (the rating value is ignored); genres from ``u.item``.
- ``online-retail``: lines with a customer id, cancellations (``C`` invoices)
  and non-positive quantities dropped; one event per distinct (customer,
  product, invoice) of weight 1, so a summed matrix counts distinct invoices.
- ``taobao``: behaviours weighted pv 1, fav 2, cart 3, buy 4; days in
  Asia/Shanghai; the item's category id as category.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patron.errors import NotFoundError, ValidationError
from patron.recs.base import ItemCatalog

__all__ = ["DATASETS", "EventLog", "data_root", "load_dataset"]

#: Reference data set name -> path under the shared data folder.
DATASETS = {
    "movielens-100k": "movielens_100k",
    "online-retail": "online_retail/online_retail.csv.gz",
    "taobao": "taobao_userbehavior/UserBehavior_first_users_prefix.csv.gz",
}
TAOBAO_WEIGHTS = {"pv": 1.0, "fav": 2.0, "cart": 3.0, "buy": 4.0}


@dataclass(frozen=True)
class EventLog:
    """A data set's events (``user``, ``item``, ``weight``, ``time``, ``day``) and item attributes."""

    name: str
    events: pd.DataFrame
    catalog: ItemCatalog | None
    timezone: str = "UTC"

    @property
    def n_users(self) -> int:
        return int(self.events["user"].nunique())

    @property
    def n_items(self) -> int:
        return int(self.events["item"].nunique())


def data_root() -> Path:
    """The shared data folder: ``PATRON_SHARED_DATA``, else ``../shared/data`` beside the project."""
    configured = os.environ.get("PATRON_SHARED_DATA")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4].parent / "shared" / "data"


def load_dataset(name_or_path: str, *, root: Path | None = None) -> EventLog:
    """Load a reference data set by name, or a CSV/Parquet file of ``user,item[,weight][,time][,category]``."""
    base = data_root() if root is None else root
    if name_or_path in DATASETS:
        path = base / DATASETS[name_or_path]
        if not path.exists():
            raise NotFoundError(f"data set {name_or_path!r} is not at {path}")
        loader = {"movielens-100k": _movielens, "online-retail": _online_retail, "taobao": _taobao}[name_or_path]
        return loader(path)
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(DATASETS)
        raise NotFoundError(f"no data set {name_or_path!r}: give one of {known} or a CSV/Parquet file")
    return _generic(path)


def _finish(name: str, frame: pd.DataFrame, timezone: str, catalog: ItemCatalog | None) -> EventLog:
    frame = frame.reset_index(drop=True)
    frame["user"] = frame["user"].astype(str)
    frame["item"] = frame["item"].astype(str)
    frame["weight"] = frame["weight"].astype(np.float64)
    frame["time"] = frame["time"].astype(np.float64)
    stamps = pd.to_datetime(frame["time"], unit="s", utc=True).dt.tz_convert(timezone)
    frame["day"] = stamps.dt.tz_localize(None).dt.normalize()
    return EventLog(name, frame[["user", "item", "weight", "time", "day"]], catalog, timezone)


def _catalog(items: pd.Series[Any], titles: pd.Series[Any], categories: pd.Series[Any]) -> ItemCatalog:
    n = len(items)
    return ItemCatalog(
        item_ids=np.asarray(items.astype(str).tolist(), dtype=str),
        title=titles.astype(str).to_numpy(dtype=object),
        category=categories.astype(str).to_numpy(dtype=object),
        brand=np.full(n, "", dtype=object),
        price=np.full(n, np.nan, dtype=np.float64),
    )


def _movielens(folder: Path) -> EventLog:
    ratings = pd.read_csv(
        folder / "u.data.gz", sep="\t", header=None, names=["user", "item", "rating", "time"], dtype=np.int64
    )
    ratings["weight"] = 1.0
    genres = [line.split("|")[0] for line in (folder / "u.genre").read_text(encoding="latin-1").splitlines() if line]
    rows = (folder / "u.item").read_text(encoding="latin-1").splitlines()
    ids, titles, categories = [], [], []
    for row in rows:
        fields = row.split("|")
        if len(fields) < 5 + len(genres):
            continue
        flags = fields[5 : 5 + len(genres)]
        ids.append(fields[0])
        titles.append(fields[1])
        categories.append("|".join(g for g, f in zip(genres, flags, strict=True) if f == "1"))
    catalog = _catalog(pd.Series(ids), pd.Series(titles), pd.Series(categories))
    return _finish("movielens-100k", ratings, "UTC", catalog)


def _online_retail(path: Path) -> EventLog:
    lines = pd.read_csv(
        path,
        usecols=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID"],
        dtype={"InvoiceNo": str, "StockCode": str, "Description": str, "CustomerID": str},
    )
    keep = (
        lines["CustomerID"].notna()
        & (lines["CustomerID"].str.len() > 0)
        & ~lines["InvoiceNo"].str.startswith("C")
        & (lines["Quantity"] > 0)
    )
    lines = lines[keep]
    lines = lines.assign(user=lines["CustomerID"].str.replace(r"\.0$", "", regex=True), item=lines["StockCode"])
    stamps = pd.to_datetime(lines["InvoiceDate"])
    lines = lines.assign(time=(stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))
    events = lines.drop_duplicates(["user", "item", "InvoiceNo"]).assign(weight=1.0)
    titles = lines.dropna(subset=["Description"]).drop_duplicates("item")
    catalog = _catalog(titles["item"], titles["Description"], pd.Series([""] * len(titles)))
    return _finish("online-retail", events[["user", "item", "weight", "time"]], "UTC", catalog)


def _taobao(path: Path) -> EventLog:
    raw = pd.read_csv(path, header=None, names=["user", "item", "category", "behavior", "time"])
    unknown = set(raw["behavior"].unique()) - set(TAOBAO_WEIGHTS)
    if unknown:
        raise ValidationError(f"unknown Taobao behaviours {sorted(unknown)}", field="behavior")
    raw["weight"] = raw["behavior"].map(TAOBAO_WEIGHTS)
    cats = raw.drop_duplicates("item")[["item", "category"]]
    catalog = _catalog(cats["item"], pd.Series([""] * len(cats)), cats["category"])
    return _finish("taobao", raw[["user", "item", "weight", "time"]], "Asia/Shanghai", catalog)


def _generic(path: Path) -> EventLog:
    parquet = path.suffix == ".parquet"
    frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={"user": str, "item": str})
    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValidationError(f"{path.name} lacks the column(s) {sorted(missing)}", field="dataset")
    if "weight" not in frame.columns:
        frame["weight"] = 1.0
    if "time" not in frame.columns:
        frame["time"] = 0.0
    elif not pd.api.types.is_numeric_dtype(frame["time"]):
        stamps = pd.to_datetime(frame["time"], utc=True)
        frame["time"] = (stamps - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)
    if (frame["weight"] <= 0).any():
        raise ValidationError("weights must be positive", field="weight")
    catalog = None
    if "category" in frame.columns:
        cats = frame.drop_duplicates("item")[["item", "category"]]
        catalog = _catalog(cats["item"], pd.Series([""] * len(cats)), cats["category"].fillna(""))
    return _finish(path.stem, frame[["user", "item", "weight", "time"]], "UTC", catalog)
