"""Train one recommendation version from the warehouse and write everything serving needs.

``artefact_dir/recs/<version-id>/`` holds:

- ``model/``: the fitted model (:meth:`Recommender.save`, no pickle);
- ``items.parquet``: item facts (category, price, published, hidden, in stock);
  stock is the latest inventory count before ``as_of`` (``on_hand > 0``; a
  product never counted is taken as in stock);
- ``purchases.npz``: members x items purchase occasions (exclusion rule, bought together);
- ``repeat_categories.json``: every category's buyers and repeat share, and the learned repeat ones;
- ``trending.parquet``: trending scores over everyone (segment ``""``) and per RFM segment;
- ``members.parquet``: member -> RFM segment (from the last build's profiles);
- ``interactions.json``: the :class:`InteractionConfig` used;
- ``candidates.faiss`` and ``candidates.json``: a factor model's candidate index, when the catalogue has at
  least :data:`~patron.recs.candidates.INDEX_MIN_ITEMS` items (:class:`~patron.recs.candidates.CandidateIndex`);
- ``metrics.json`` and ``manifest.json`` (written last: a directory without it is incomplete).

Offline metrics come from a temporal holdout: the same model fitted on what
happened before ``as_of - holdout_days``, asked for top 10 (already seen items
excluded) for the members who then bought something new, against those new
purchases: NDCG@10, recall@10 and catalog coverage.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from patron.errors import ValidationError
from patron.progress import NullProgress, Progress
from patron.recs import models as _models
from patron.recs.base import Interactions, ItemCatalog, Recommender, top_k
from patron.recs.candidates import INDEX_MIN_ITEMS, CandidateIndex
from patron.recs.evaluation.metrics import catalog_coverage, ranking_metrics
from patron.recs.fallback import segment_popularity, trending_scores
from patron.recs.interactions import InteractionConfig, build_interactions, build_purchases
from patron.recs.models.mf import FactorModel
from patron.recs.rules import ItemFacts, learn_repeat_categories, repeat_purchase_shares
from patron.recs.serving import write_member_matrix
from patron.runtime import Runtime

__all__ = ["holdout_metrics", "in_stock_flags", "train_version", "write_version"]

log = logging.getLogger(__name__)
HOLDOUT_DAYS = 28
TRENDING_DAYS = 28
TRENDING_HALF_LIFE_DAYS = 7.0
MAX_EVAL_MEMBERS = 2000
_TABLES = ("orders", "order_lines", "products", "events", "inventory", "profiles")


def _make(model_name: str, params: Mapping[str, Any]) -> Recommender:
    registry = _models.load_all()
    if model_name not in registry:
        raise ValidationError(f"unknown model {model_name!r}; known: {', '.join(sorted(registry))}", field="model")
    model: Recommender = registry[model_name](**dict(params))
    return model


def _default_as_of(tables: Mapping[str, ir.Table]) -> datetime:
    """Midnight after the last order or event."""
    last = [tables["orders"].ordered_at.max().execute()]
    if "events" in tables:
        last.append(tables["events"].occurred_at.max().execute())
    known = [t for t in last if t is not None and t == t]
    if not known:
        raise ValidationError("the warehouse holds no orders or events yet: import data first", field="as_of")
    day: date = max(known).date()
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def in_stock_flags(
    tables: Mapping[str, ir.Table], item_ids: np.ndarray[Any, Any], as_of: datetime
) -> np.ndarray[Any, Any]:
    """Per item: whether its latest stock count before ``as_of`` is positive (True when never counted)."""
    flags = np.ones(len(item_ids), dtype=bool)
    if "inventory" not in tables:
        return flags
    inv = tables["inventory"].filter(tables["inventory"].updated_at < as_of)
    latest = inv.group_by("product_key").aggregate(updated_at=inv.updated_at.max())
    rows = inv.join(latest, ["product_key", "updated_at"]).select("product_key", "on_hand").to_pyarrow()
    index = {v: k for k, v in enumerate(np.asarray(item_ids).tolist())}
    for key, on_hand in zip(rows.column("product_key").to_pylist(), rows.column("on_hand").to_pylist(), strict=True):
        if key in index:
            flags[index[key]] = flags[index[key]] and on_hand > 0
    return flags


def holdout_metrics(
    model: Recommender,
    tables: Mapping[str, ir.Table],
    as_of: datetime,
    config: InteractionConfig,
    holdout_days: int = HOLDOUT_DAYS,
    k: int = 10,
) -> dict[str, Any]:
    """Fit ``model`` before ``as_of - holdout_days``; score top ``k`` against the new purchases after it."""
    cut = as_of - timedelta(days=holdout_days)
    train, catalog = build_interactions(tables, cut, config)
    window = InteractionConfig(**{**config.model_dump(), "lookback_days": holdout_days})
    later = build_purchases(tables, as_of, window)
    index = train.user_index()
    rows = [(index[u], r) for r, u in enumerate(later.user_ids.tolist()) if u in index]
    if not train.matrix.nnz or not rows:
        return {"k": k, "members": 0, "ndcg": None, "recall": None, "coverage": None, "holdout_days": holdout_days}
    train_rows = np.asarray([a for a, _ in rows], dtype=np.int64)
    relevant = later.matrix[np.asarray([b for _, b in rows], dtype=np.int64)].tocsr()
    seen = train.matrix[train_rows].tocsr()
    relevant = (relevant - relevant.multiply(seen > 0)).tocsr()  # new items only
    relevant.eliminate_zeros()
    keep = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(keep) > MAX_EVAL_MEMBERS:
        keep = np.sort(np.random.default_rng(0).choice(keep, MAX_EVAL_MEMBERS, replace=False))
    if len(keep) == 0:
        return {"k": k, "members": 0, "ndcg": None, "recall": None, "coverage": None, "holdout_days": holdout_days}
    model.fit(train, catalog)
    ranked = []
    for start in range(0, len(keep), 256):
        part = keep[start : start + 256]
        history = seen[part]
        idx, _ = top_k(model.scores(history, train_rows[part]), k, history)
        ranked.append(idx)
    ranks = np.vstack(ranked)
    scored = ranking_metrics(ranks, relevant[keep], k)
    return {
        "k": k,
        "members": scored.users,
        "ndcg": scored.ndcg,
        "recall": scored.recall,
        "coverage": catalog_coverage(ranks, train.n_items),
        "holdout_days": holdout_days,
        "cut": cut.isoformat(),
    }


def _trending(
    tables: Mapping[str, ir.Table], as_of: datetime, config: InteractionConfig, segments: dict[str, str]
) -> pa.Table:
    recent = InteractionConfig(**{**config.model_dump(), "lookback_days": TRENDING_DAYS, "half_life_days": None})
    data, _ = build_interactions(tables, as_of, recent)
    lists = {"": trending_scores(data, TRENDING_HALF_LIFE_DAYS)}
    if data.matrix.nnz:
        lists.update(segment_popularity(data, segments, TRENDING_HALF_LIFE_DAYS))
    parts: dict[str, list[Any]] = {"segment": [], "item_id": [], "score": []}
    for name, scores in lists.items():
        nz = np.flatnonzero(scores > 0)
        parts["segment"] += [name] * len(nz)
        parts["item_id"] += data.item_ids[nz].tolist()
        parts["score"] += scores[nz].astype(np.float64).tolist()
    return pa.table(
        {
            "segment": pa.array(parts["segment"], pa.string()),
            "item_id": pa.array(parts["item_id"], pa.string()),
            "score": pa.array(parts["score"], pa.float64()),
        }
    )


def _segments(tables: Mapping[str, ir.Table]) -> dict[str, str]:
    if "profiles" not in tables:
        return {}
    rows = tables["profiles"].select("member_key", "segment").to_pyarrow()
    return {
        m: s
        for m, s in zip(rows.column("member_key").to_pylist(), rows.column("segment").to_pylist(), strict=True)
        if s
    }


def write_version(
    directory: Path,
    model: Recommender,
    facts: ItemFacts,
    purchases: Interactions,
    segments: dict[str, str],
    trending: pa.Table,
    config: InteractionConfig,
) -> dict[str, Any]:
    """Write a version's files except metrics and manifest (see the module docstring); returns manifest fields."""
    model.save(directory / "model")
    pq.write_table(facts.to_arrow(), directory / "items.parquet")
    write_member_matrix(directory / "purchases.npz", purchases.user_ids, purchases.matrix)
    shares = repeat_purchase_shares(purchases.matrix, facts)
    repeat = learn_repeat_categories(purchases.matrix, facts)
    (directory / "repeat_categories.json").write_text(
        json.dumps(
            {"categories": repeat, "all": {c: {"buyers": b, "share": s} for c, (b, s) in shares.items()}}, indent=2
        )
    )
    pq.write_table(trending, directory / "trending.parquet")
    pq.write_table(
        pa.table(
            {
                "member_key": pa.array(list(segments), pa.string()),
                "segment": pa.array(list(segments.values()), pa.string()),
            }
        ),
        directory / "members.parquet",
    )
    (directory / "interactions.json").write_text(config.model_dump_json(indent=2))
    extra: dict[str, Any] = {"repeat_categories": sorted(repeat)}
    if isinstance(model, FactorModel) and len(model.item_ids) >= INDEX_MIN_ITEMS:
        index = CandidateIndex.build(model.item_factors, model.item_bias, model.user_factors)
        index.save(directory)
        header = index.header
        extra["candidate_index"] = {"cells": header.cells, "nprobe": header.nprobe, "recall_at_10": header.recall}
    return extra


def train_version(
    runtime: Runtime,
    model_name: str,
    params: Mapping[str, Any] | None = None,
    as_of: datetime | date | None = None,
    config: InteractionConfig | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build interactions from the warehouse, fit ``model_name``, write a version directory; returns it."""
    progress = progress or NullProgress()
    config = config or InteractionConfig()
    params = dict(params or {})
    _make(model_name, params)  # fail fast on an unknown model or bad parameters
    started = time.perf_counter()
    progress.stage("recommendations", 5)
    with runtime.warehouse(read_only=True) as warehouse:
        present = set(warehouse.con.list_tables())
        tables = {name: warehouse.table(name) for name in _TABLES if name in present}
        moment = _default_as_of(tables) if as_of is None else _as_datetime(as_of)
        data, catalog = build_interactions(tables, moment, config)
        purchases = build_purchases(tables, moment, config)
        facts = ItemFacts.from_catalog(catalog, in_stock=in_stock_flags(tables, catalog.item_ids, moment))
        segments = _segments(tables)
        trending = _trending(tables, moment, config, segments)
        progress.advance()
        metrics = holdout_metrics(_make(model_name, params), tables, moment, config)
        progress.advance()
    model = _make(model_name, params).fit(data, catalog)
    progress.advance()
    return _publish(
        runtime, model, facts, purchases, segments, trending, config, moment, data, catalog, metrics, started, progress
    )


def _publish(
    runtime: Runtime,
    model: Recommender,
    facts: ItemFacts,
    purchases: Interactions,
    segments: dict[str, str],
    trending: pa.Table,
    config: InteractionConfig,
    moment: datetime,
    data: Interactions,
    catalog: ItemCatalog,
    metrics: dict[str, Any],
    started: float,
    progress: Progress,
) -> Path:
    version_id = f"{model.name[:24]}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    root = runtime.settings.artefact_dir / "recs"
    staging = root / f".{version_id}.tmp"
    staging.mkdir(parents=True)
    extra = write_version(staging, model, facts, purchases, segments, trending, config)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    progress.advance()
    manifest = {
        "version_id": version_id,
        "model": model.name,
        "params": model.params,
        "as_of": moment.isoformat(),
        "trained_at": datetime.now(UTC).isoformat(),
        "members": int(data.n_users),
        "items": int(catalog.item_ids.size),
        "interactions": int(data.matrix.nnz),
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
        **extra,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    directory = root / version_id
    os.replace(staging, directory)
    progress.advance()
    log.info("recommendation version trained", extra={"version_id": version_id, "model": model.name})
    return directory


def _as_datetime(value: datetime | date) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())
