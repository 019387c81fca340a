"""`patron build`: profiles, segments and the artefacts serving reads."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pyarrow as pa

from patron.analytics.artefacts import current_manifest, publish
from patron.analytics.clusters import cluster_features, cluster_members
from patron.analytics.member_value import VALUE_COLUMNS, member_value
from patron.analytics.models import BuildRun
from patron.analytics.rfm import SEGMENTS, order_values, rfm_profiles
from patron.analytics.schemas import BuildRead, SegmentRead
from patron.churn.service import TABLE_SCHEMA as CHURN_SCHEMA
from patron.churn.service import churn_step, write_churn_report
from patron.db.base import utcnow
from patron.errors import ValidationError
from patron.forecast.step import forecast_step, write_forecast_artefacts
from patron.progress import NullProgress, Progress
from patron.runtime import Runtime
from patron.tags.behaviour import BEHAVIOUR_COLUMNS, behaviour_tags
from patron.warehouse.store import Warehouse

__all__ = ["build_profiles", "default_as_of"]

log = logging.getLogger(__name__)
_KEEP_BUILDS = 3
_CLUSTERS_FILE = "clusters.json"


def default_as_of(warehouse: Warehouse) -> date:
    """The day after the last order in the data."""
    last = warehouse.table("orders").ordered_at.max().execute()
    if last is None:
        raise ValidationError("the warehouse holds no orders yet: import data first", field="as_of")
    last_day: date = last.date() if hasattr(last, "date") else last
    return last_day + timedelta(days=1)


def build_profiles(
    runtime: Runtime,
    as_of: date | None = None,
    progress: Progress = NullProgress(),  # noqa: B008
    *,
    with_models: bool = True,
) -> BuildRead:
    """Compute profiles, segments, behaviour tags and (unless disabled) the models; export artefacts, publish them.

    The models are CLV (BG/NBD + Gamma-Gamma), churn risk with reasons, behaviour clusters and demand
    forecasts with low-stock warnings;
    ``with_models=False`` gives a fast build with RFM, segments and behaviour tags only.
    """
    runtime.store.require_initialised()
    started = time.perf_counter()
    with runtime.store.session() as sess:
        run = BuildRun(as_of=as_of)
        sess.add(run)
        sess.flush()
        run_id = run.id
    try:
        with runtime.warehouse() as warehouse:
            warehouse.ensure_schema()
            stats = _build(runtime, warehouse, run_id, as_of, progress, with_models)
    except Exception as exc:
        with runtime.store.session() as sess:
            failed = sess.get_one(BuildRun, run_id)
            failed.status, failed.error, failed.finished_at = "failed", str(exc), utcnow()
        raise
    seconds = time.perf_counter() - started
    with runtime.store.session() as sess:
        done = sess.get_one(BuildRun, run_id)
        done.as_of, done.status, done.finished_at = stats["as_of"], "completed", utcnow()
        done.artefact_dir, done.stats = (
            stats["artefact_dir"],
            {**stats, "as_of": str(stats["as_of"]), "seconds": seconds},
        )
    _prune(runtime.settings.artefact_dir, stats["artefact_dir"])
    return BuildRead(
        id=run_id,
        as_of=stats["as_of"],
        status="completed",
        members_profiled=stats["members"],
        seconds=seconds,
        artefact_dir=stats["artefact_dir"],
    )


def _build(
    runtime: Runtime, warehouse: Warehouse, run_id: int, as_of: date | None, progress: Progress, with_models: bool
) -> dict[str, Any]:
    progress.stage("profiles", 8)
    as_of = as_of or default_as_of(warehouse)
    as_of_ts = datetime.combine(as_of, dtime())
    orders, lines, products = warehouse.table("orders"), warehouse.table("order_lines"), warehouse.table("products")
    build_dir = _build_dir(runtime, run_id)
    seconds: dict[str, float] = {}
    with order_values(lines).cache() as values:  # one pass over the lines serves RFM and the order facts
        with _timed(seconds, "profiles"), rfm_profiles(orders, values, warehouse.table("member_order"), as_of_ts) as p:
            warehouse.con.create_table("profiles", p, overwrite=True)
        progress.advance()
        with _timed(seconds, "member_value"):
            _member_value(warehouse, orders, as_of_ts, build_dir, with_models)
        progress.advance()
        with _timed(seconds, "behaviour_tags"):
            warehouse.con.create_table("behaviour", behaviour_tags(orders, lines, products, as_of_ts), overwrite=True)
        progress.advance()
        with _timed(seconds, "churn"):
            _churn(warehouse, orders, lines, products, as_of_ts, build_dir, with_models)
        progress.advance()
        with _timed(seconds, "clusters"):
            _clusters(runtime, warehouse, orders, lines, products, as_of_ts, build_dir, with_models)
        progress.advance()
        with _timed(seconds, "forecasts"):
            if with_models:
                write_forecast_artefacts(forecast_step(warehouse, as_of_ts), build_dir)
        progress.advance()
        with _timed(seconds, "export"):
            _export(warehouse, orders, values, build_dir, as_of_ts)
        progress.advance()
    root = runtime.settings.artefact_dir
    segments = _segment_summary(warehouse.table("profiles"))
    (build_dir / "segments.json").write_text(json.dumps([s.model_dump() for s in segments]))
    total = sum(s.members for s in segments)
    manifest = {
        "build_id": run_id,
        "as_of": str(as_of),
        "built_at": utcnow().isoformat(),
        "members": total,
        "models": with_models,
        "seconds": seconds,
    }
    publish(root, build_dir, manifest)
    progress.advance()
    log.info("build finished", extra={"build_id": run_id, "members": total, "seconds": seconds})
    return {"as_of": as_of, "artefact_dir": str(build_dir), "members": total, "steps": seconds}


@contextmanager
def _timed(laps: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    laps[name] = round(time.perf_counter() - started, 3)


def _build_dir(runtime: Runtime, run_id: int) -> Path:
    build_dir = runtime.settings.artefact_dir / f"build-{run_id}"
    build_dir.mkdir(parents=True, exist_ok=True)
    return build_dir


def _member_value(warehouse: Warehouse, orders: Any, as_of_ts: datetime, build_dir: Path, enabled: bool) -> None:
    """P(alive), expected purchases and CLV per member (null columns when disabled or not fittable)."""
    if enabled:
        scored = member_value(orders, as_of_ts)
        table, parameters = scored.table, scored.parameters()
    else:
        table = pa.table(
            {"member_key": pa.array([], pa.string()), **{c: pa.array([], pa.float64()) for c in VALUE_COLUMNS}}
        )
        parameters = {"disabled": True}
    warehouse.con.create_table("member_value", table, overwrite=True)
    (build_dir / "member_value.json").write_text(json.dumps(parameters, indent=2))


def _churn(
    warehouse: Warehouse, orders: Any, lines: Any, products: Any, as_of_ts: datetime, build_dir: Path, enabled: bool
) -> None:
    """Churn risk and reasons per member, and the model's report (``churn.json``) when enabled."""
    if enabled:
        result = churn_step(orders, lines, products, as_of_ts)
        table = result.table
        write_churn_report(result, build_dir)
    else:
        table = CHURN_SCHEMA.empty_table()
    warehouse.con.create_table("churn", table, overwrite=True)


def _clusters(
    runtime: Runtime,
    warehouse: Warehouse,
    orders: Any,
    lines: Any,
    products: Any,
    as_of_ts: datetime,
    build_dir: Path,
    enabled: bool,
) -> None:
    """Behaviour clusters, keeping the previous build's ids for the same groups (``clusters.json``)."""
    if not enabled:
        warehouse.con.create_table(
            "clusters",
            pa.table({"member_key": pa.array([], pa.string()), "cluster": pa.array([], pa.int32())}),
            overwrite=True,
        )
        return
    previous = None
    current = current_manifest(runtime.settings.artefact_dir)
    if current is not None and (Path(current["path"]) / _CLUSTERS_FILE).is_file():
        previous = json.loads((Path(current["path"]) / _CLUSTERS_FILE).read_text())
    features = cluster_features(orders, lines, products, as_of_ts).to_pyarrow()
    result = cluster_members(features, previous)
    warehouse.con.create_table("clusters", result.labels, overwrite=True)
    (build_dir / _CLUSTERS_FILE).write_text(json.dumps(result.summary(), indent=2))


def _export(warehouse: Warehouse, orders: Any, values: Any, build_dir: Path, as_of_ts: datetime) -> None:
    """Write the Parquet artefacts serving reads: profiles and order facts sorted by member, member events."""
    stored, members, value = warehouse.table("profiles"), warehouse.table("members"), warehouse.table("member_value")
    behaviour, churn, clusters = warehouse.table("behaviour"), warehouse.table("churn"), warehouse.table("clusters")
    enriched = stored.left_join(members, "member_key").select(
        stored, members.source, members.region, members.gender, members.channel, members.signup_at
    )
    enriched = enriched.left_join(value, "member_key").select(enriched, *(value[c] for c in VALUE_COLUMNS))
    enriched = enriched.left_join(behaviour, "member_key").select(
        enriched, *(behaviour[c] for c in BEHAVIOUR_COLUMNS if c != "member_key")
    )
    enriched = enriched.left_join(churn, "member_key").select(
        enriched, *(churn[c] for c in CHURN_SCHEMA.names if c != "member_key")
    )
    enriched = enriched.left_join(clusters, "member_key").select(enriched, clusters.cluster)
    enriched.order_by("member_key").to_parquet(build_dir / "profiles.parquet")
    facts = orders.filter(orders.ordered_at < as_of_ts).left_join(values, "order_key")
    facts = facts.select(orders, lines=values.lines.fill_null(0))
    facts.order_by("member_key").to_parquet(build_dir / "orders.parquet")  # row groups by member: fast look-ups
    events = warehouse.table("events")
    events = events.filter(events.member_key.notnull() & (events.occurred_at < as_of_ts))
    events.drop("source", "event_key").order_by("occurred_at").to_parquet(build_dir / "events.parquet")


def _segment_summary(profiles: Any) -> list[SegmentRead]:
    summary = (
        profiles.group_by("segment")
        .aggregate(
            members=profiles.count(),
            avg_recency_days=profiles.recency_days.mean(),
            avg_frequency=profiles.frequency.mean(),
            avg_monetary=profiles.monetary.mean(),
            monetary=profiles.monetary.sum(),
        )
        .to_pyarrow()
        .to_pylist()
    )
    by_name = {row["segment"]: row for row in summary}
    total = sum(row["members"] for row in summary) or 1
    ordered = [name for name, _, _ in SEGMENTS]
    return [
        SegmentRead(
            segment=name,
            members=int(row["members"]),
            share=row["members"] / total,
            avg_recency_days=float(row["avg_recency_days"]),
            avg_frequency=float(row["avg_frequency"]),
            avg_monetary=float(row["avg_monetary"]),
            monetary=float(row["monetary"]),
        )
        for name in ordered
        if (row := by_name.get(name)) is not None
    ]


def _prune(root: Path, current: str) -> None:
    """Keep the newest builds only; never the current one."""
    builds = sorted(root.glob("build-*"), key=lambda p: int(p.name.split("-")[1]))
    for old in builds[:-_KEEP_BUILDS]:
        if str(old) != current:
            shutil.rmtree(old, ignore_errors=True)
