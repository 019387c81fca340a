"""Behaviour clusters in the console: sizes, traits in words and the silhouette that chose k.

The build writes ``clusters.json`` (:meth:`patron.analytics.clusters.ClusterResult.summary`)
next to its Parquet files; an older build, or one without models, has none.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patron.analytics.artefacts import BuildReader
from patron.console.i18n import Translator, catalog, fmt_decimal

__all__ = [
    "CLUSTERS_FILE",
    "ClusterSummary",
    "cluster_description",
    "cluster_href",
    "clusters_context",
    "read_clusters",
]

log = logging.getLogger(__name__)

CLUSTERS_FILE = "clusters.json"
MEAN_COLUMNS = ("recency_days", "frequency", "monetary", "avg_order_value")
_AMOUNTS = frozenset({"monetary", "avg_order_value"})


@dataclass(frozen=True)
class ClusterSummary:
    """What the console shows of ``clusters.json``."""

    k: int
    members: int
    silhouette: dict[int, float]
    clusters: tuple[dict[str, Any], ...]
    reason: str | None

    def cluster(self, cluster_id: int) -> dict[str, Any] | None:
        return next((c for c in self.clusters if c["id"] == cluster_id), None)


def read_clusters(reader: BuildReader) -> ClusterSummary | None:
    """The build's cluster summary, or None when the build has none (or it cannot be read)."""
    path = Path(reader.manifest["path"]) / CLUSTERS_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        clusters = tuple(
            {
                "id": int(c["id"]),
                "size": int(c["size"]),
                "share": float(c["share"]),
                "means": {name: float(value) for name, value in dict(c.get("means", {})).items()},
                "traits": [str(t) for t in c.get("traits", [])],
                "description": str(c.get("description", "")),
            }
            for c in raw["clusters"]
        )
        silhouette = {int(k): float(v) for k, v in dict(raw.get("silhouette", {})).items()}
        summary = ClusterSummary(int(raw["k"]), int(raw.get("members", 0)), silhouette, clusters, raw.get("reason"))
    except (KeyError, TypeError, ValueError):
        log.warning("clusters summary unreadable", extra={"build_id": reader.build_id})
        return None
    return summary


def _trait_key(code: str) -> str:
    feature, _, direction = code.partition(":")
    return f"clusters.trait.{feature}.{direction}"


def trait_label(code: str, translate: Translator) -> str:
    """``frequency:high`` -> "frequent" / "高频"; an unknown code is shown as it is."""
    key = _trait_key(code)
    return translate(key) if key in catalog("en") else code


def cluster_description(cluster: dict[str, Any], translate: Translator) -> str:
    """The cluster's traits in words; the build's English description when a trait has no translation."""
    traits: list[str] = cluster["traits"]
    if any(_trait_key(code) not in catalog("en") for code in traits):
        return str(cluster["description"])
    if not traits:
        return translate("clusters.typical")
    words = translate("clusters.trait_separator").join(translate(_trait_key(code)) for code in traits)
    text = translate("clusters.description", traits=words)
    return text[:1].upper() + text[1:]


def cluster_href(cluster_id: int) -> str:
    """The cluster's row in the segments page."""
    return f"/segments#cluster-{cluster_id}"


def _mean(means: dict[str, float], name: str) -> str | None:
    """Amounts with two decimals, days and orders with one (as the segments table)."""
    if name not in means:
        return None
    return fmt_decimal(means[name], 2 if name in _AMOUNTS else 1)


def _rows(summary: ClusterSummary, translate: Translator) -> list[dict[str, Any]]:
    rows = []
    for c in sorted(summary.clusters, key=lambda c: c["size"], reverse=True):
        means = c["means"]
        rows.append(
            {
                "id": c["id"],
                "label": translate("clusters.label", id=c["id"]),
                "description": cluster_description(c, translate),
                "traits": [{"code": code, "label": trait_label(code, translate)} for code in c["traits"]],
                "size": c["size"],
                "share": c["share"],
                "means": {name: _mean(means, name) for name in MEAN_COLUMNS},
            }
        )
    return rows


def clusters_context(reader: BuildReader, translate: Translator) -> dict[str, Any] | None:
    """The segments page's clusters block and its two charts, or None when the build has no clusters."""
    summary = read_clusters(reader)
    if summary is None:
        return None
    rows = _rows(summary, translate)
    chosen = summary.silhouette.get(summary.k)
    ks = sorted(summary.silhouette)
    return {
        "k": summary.k,
        "members": summary.members,
        "reason": summary.reason,
        "chosen_silhouette": None if chosen is None else fmt_decimal(chosen, 3),
        "silhouette": [{"k": k, "score": fmt_decimal(summary.silhouette[k], 3), "chosen": k == summary.k} for k in ks],
        "rows": rows,
        "charts": {
            "cluster-sizes": {
                "ids": [row["id"] for row in rows],
                "labels": [row["label"] for row in rows],
                "descriptions": [row["description"] for row in rows],
                "sizes": [row["size"] for row in rows],
                "shares": [round(row["share"], 4) for row in rows],
                "seriesLabel": translate("clusters.col.members"),
            },
            "cluster-silhouette": {
                "ks": ks,
                "scores": [round(summary.silhouette[k], 4) for k in ks],
                "chosen": summary.k,
                "axisLabel": translate("clusters.k_axis"),
                "seriesLabel": translate("clusters.silhouette"),
            },
        },
    }
