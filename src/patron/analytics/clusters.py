"""Member clusters: k-means over standardized behaviour features, described in words, with stable ids.

Method (docs/clusters.md)
-------------------------
1. Features per member (:func:`cluster_features`, in the warehouse): :data:`FEATURES`.
2. ``log1p`` of the skewed ones (:data:`LOG_FEATURES`), then a z-score with the
   population mean and standard deviation (a constant feature gets scale 1).
3. k in :data:`K_RANGE` maximising the mean silhouette (Rousseeuw 1987) of a
   k-means fit (k-means++, :data:`N_INIT` starts, seed :data:`SEED`) on a
   sample of at most :data:`SAMPLE_SIZE` members (those with the smallest
   seeded hash of their key); ties go to the smaller k, and a rebuild keeps
   the previous k while it scores within :data:`K_TOLERANCE` of the best.
   The chosen fit's centres seed one k-means over all members.
4. Each cluster is described by its centre in standardized units: the
   features at least :data:`TRAIT_THRESHOLD` from the population mean (at
   most :data:`MAX_TRAITS`, largest first) are its traits.
5. Ids stay stable across builds: the previous build's centres (kept in
   transformed units) are standardized like the new data and matched to the
   new centres by the Hungarian algorithm on Euclidean distance; a pair is
   kept when the previous centre falls in the new cluster (is nearer to its
   centre than to any other). Unmatched clusters get fresh ids, never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from scipy.spatial.distance import cdist  # type: ignore[import-untyped]
from sklearn.cluster import KMeans  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patron.errors import ValidationError

__all__ = [
    "FEATURES",
    "K_RANGE",
    "K_TOLERANCE",
    "LOG_FEATURES",
    "MAX_TRAITS",
    "N_INIT",
    "SAMPLE_SIZE",
    "SEED",
    "TRAIT_THRESHOLD",
    "TRAIT_WORDS",
    "ClusterProfile",
    "ClusterResult",
    "cluster_features",
    "cluster_members",
    "describe",
    "silhouettes",
]

log = logging.getLogger(__name__)

FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "category_breadth",
    "discount_share",
    "return_share",
    "tenure_days",
)
LOG_FEATURES = frozenset({"recency_days", "frequency", "monetary", "avg_order_value", "category_breadth"})
K_RANGE = range(2, 9)
SAMPLE_SIZE = 10_000
SEED = 20240601
N_INIT = 4
K_TOLERANCE = 0.01
TRAIT_THRESHOLD = 0.5
MAX_TRAITS = 3
CRITERION = (
    f"k in {K_RANGE.start}..{K_RANGE.stop - 1} maximising the mean silhouette of k-means on a sample of at most "
    f"{SAMPLE_SIZE:,} members picked by a seeded hash of their key (ties: the smaller k); a rebuild keeps the "
    f"previous k while its silhouette is within {K_TOLERANCE} of the best"
)
_VERSION = 1
_LOG_INDEX = [i for i, name in enumerate(FEATURES) if name in LOG_FEATURES]
_BLOCK = 1024  # rows of distances held at once by the silhouette: 1024 x 10,000 doubles = 80 MB

# (feature, direction) -> the adjective used in descriptions; trait codes are "feature:direction".
TRAIT_WORDS: Mapping[tuple[str, str], str] = {
    ("recency_days", "low"): "recent", ("recency_days", "high"): "lapsed",
    ("frequency", "high"): "frequent", ("frequency", "low"): "infrequent",
    ("monetary", "high"): "high-spending", ("monetary", "low"): "low-spending",
    ("avg_order_value", "high"): "big-basket", ("avg_order_value", "low"): "small-basket",
    ("category_breadth", "high"): "multi-category", ("category_breadth", "low"): "single-category",
    ("discount_share", "high"): "deal-seeking", ("discount_share", "low"): "full-price",
    ("return_share", "high"): "return-prone", ("return_share", "low"): "low-return",
    ("tenure_days", "high"): "long-standing", ("tenure_days", "low"): "newly acquired",
}  # fmt: skip


def _days_before(as_of: datetime, instant: ir.TimestampValue) -> ir.IntegerValue:
    return ((ibis.literal(as_of).epoch_seconds() - instant.epoch_seconds()) / 86400).floor().cast("int64")


def cluster_features(orders: ir.Table, lines: ir.Table, products: ir.Table, as_of: datetime) -> ir.Table:
    """Per member with a completed order before ``as_of``: the :data:`FEATURES`.

    recency_days and tenure_days are whole days from the last and the first
    completed order to ``as_of``; frequency counts completed orders; monetary
    sums their lines not returned (as in RFM); avg_order_value is monetary /
    frequency; category_breadth counts distinct known categories among the
    lines not returned; discount_share is the share of orders with a
    discount; return_share the share of the orders' lines returned (0 without
    lines).
    """
    for name, table, needed in (
        ("orders", orders, ("order_key", "member_key", "ordered_at", "status", "discount")),
        ("lines", lines, ("order_key", "product_key", "amount", "returned")),
        ("products", products, ("product_key", "category")),
    ):
        if missing := [c for c in needed if c not in table.columns]:
            raise ValidationError(f"the {name} table lacks the columns {', '.join(missing)}", field=name)
    done = orders.filter((orders.status == "completed") & orders.member_key.notnull() & (orders.ordered_at < as_of))
    per_order = done.group_by("member_key").aggregate(
        frequency=done.count(),
        first_at=done.ordered_at.min(),
        last_at=done.ordered_at.max(),
        discounted=ibis.ifelse(done.discount > 0, 1, 0).sum(),
    )
    bought = lines.join(done, "order_key").select(done.member_key, lines.product_key, lines.amount, lines.returned)
    bought = bought.left_join(products, "product_key").select(bought, products.category)
    per_line = bought.group_by("member_key").aggregate(
        lines=bought.count(),
        returned=ibis.ifelse(bought.returned, 1, 0).sum(),
        monetary=bought.amount.sum(where=~bought.returned),
        category_breadth=bought.category.nunique(where=~bought.returned),
    )
    joined = per_order.left_join(per_line, "member_key").select(per_order, *(per_line[c] for c in per_line.columns[1:]))
    monetary = joined.monetary.fill_null(0.0).cast("float64")
    lines_count = joined.lines.fill_null(0)
    return joined.select(
        "member_key",
        recency_days=_days_before(as_of, joined.last_at),
        frequency=joined.frequency.cast("int64"),
        monetary=monetary,
        avg_order_value=(monetary / joined.frequency).cast("float64"),
        category_breadth=joined.category_breadth.fill_null(0).cast("int64"),
        discount_share=(joined.discounted / joined.frequency).cast("float64"),
        return_share=ibis.ifelse(lines_count > 0, joined.returned.fill_null(0) / lines_count, 0.0).cast("float64"),
        tenure_days=_days_before(as_of, joined.first_at),
    )


@dataclass(frozen=True)
class ClusterProfile:
    """One cluster: its id, size, the mean of each raw feature and its traits.

    ``centre`` is the mean in standardized units (0 = the population mean);
    ``centroid`` the mean in transformed units (after ``log1p``), which is
    what a later build matches against.
    """

    id: int
    size: int
    share: float
    means: dict[str, float]
    centre: dict[str, float]
    centroid: dict[str, float]
    traits: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ClusterResult:
    """Cluster ids per member and the profiles of the clusters.

    ``labels`` has columns ``member_key`` (sorted) and ``cluster`` (the id);
    ``silhouette`` maps each k tried to its mean silhouette on the sample;
    ``reason`` says why fewer than two clusters were formed, if so.
    """

    labels: pa.Table
    k: int
    silhouette: dict[int, float]
    sample_size: int
    clusters: tuple[ClusterProfile, ...]
    mean: dict[str, float]
    scale: dict[str, float]
    next_id: int
    reason: str | None = None
    members: int = 0

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary; pass it as ``previous`` to the next build to keep the ids."""
        return {
            "version": _VERSION,
            "method": "k-means",
            "criterion": CRITERION,
            "k": self.k,
            "silhouette": {str(k): score for k, score in self.silhouette.items()},
            "sample_size": self.sample_size,
            "members": self.members,
            "features": list(FEATURES),
            "log_features": sorted(LOG_FEATURES),
            "standardization": {"mean": self.mean, "scale": self.scale},
            "clusters": [
                {
                    "id": c.id,
                    "size": c.size,
                    "share": c.share,
                    "means": c.means,
                    "centre": c.centre,
                    "centroid": c.centroid,
                    "traits": list(c.traits),
                    "description": c.description,
                }
                for c in self.clusters
            ],
            "next_id": self.next_id,
            "reason": self.reason,
        }


def describe(centre: Mapping[str, float]) -> tuple[tuple[str, ...], str]:
    """Trait codes (``"frequency:high"``) and an English phrase for a centre in standardized units."""
    distinctive = [(abs(z), i, name) for i, name in enumerate(FEATURES) if abs(z := centre[name]) >= TRAIT_THRESHOLD]
    chosen = sorted(distinctive, key=lambda t: (-t[0], t[1]))[:MAX_TRAITS]
    codes = tuple(f"{name}:{'high' if centre[name] > 0 else 'low'}" for _, _, name in chosen)
    words = [TRAIT_WORDS[(code.split(":")[0], code.split(":")[1])] for code in codes]
    phrase = ", ".join(words) + " buyers" if words else "typical buyers"
    return codes, phrase[0].upper() + phrase[1:]


def _to_arrow(features: ir.Table | pa.Table) -> pa.Table:
    table = features.to_pyarrow() if isinstance(features, ir.Table) else features
    missing = [c for c in ("member_key", *FEATURES) if c not in table.column_names]
    if missing:
        raise ValidationError(f"the features lack the columns {', '.join(missing)}", field="features")
    keys = pc.cast(table.column("member_key"), pa.string())
    table = table.set_column(table.schema.get_field_index("member_key"), "member_key", keys)
    if keys.null_count:
        raise ValidationError("a member key is missing", field="features.member_key")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise ValidationError("a member appears more than once", field="features.member_key")
    # Sorted by member, so that the same members in any row order give the same sample and fit.
    return table.take(pc.sort_indices(table, sort_keys=[("member_key", "ascending")]))


def _raw_matrix(table: pa.Table) -> NDArray[np.float64]:
    columns = [pc.cast(table.column(c), pa.float64()).to_numpy() for c in FEATURES]
    raw = np.column_stack(columns) if columns[0].size else np.empty((0, len(FEATURES)))
    bad = ~np.isfinite(raw) | ((raw < 0) & np.isin(np.arange(len(FEATURES)), _LOG_INDEX))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        key = table.column("member_key")[row].as_py()
        raise ValidationError(
            f"{FEATURES[col]} is missing, infinite or negative for member {key} (row {row})",
            field=f"features.{FEATURES[col]}",
        )
    return raw


def _transform(raw: NDArray[np.float64]) -> NDArray[np.float64]:
    transformed = raw.copy()
    transformed[:, _LOG_INDEX] = np.log1p(transformed[:, _LOG_INDEX])
    return transformed


def silhouettes(points: NDArray[np.float64], labelings: list[NDArray[np.int64]]) -> list[float]:
    """The mean silhouette (Rousseeuw 1987) of each labeling of ``points``, in one pass over the distances.

    s(i) = (b - a) / max(a, b) with a the mean distance to the other members
    of i's cluster and b the smallest mean distance to another cluster; 0 for
    a member alone in its cluster (as scikit-learn). The Euclidean distances
    are computed once, by blocks of rows, and summed per cluster of every
    labeling by one matrix product.
    """
    n = points.shape[0]
    offsets = np.cumsum([0, *(int(labels.max()) + 1 for labels in labelings)])
    onehot = np.zeros((n, int(offsets[-1])))
    for labels, offset in zip(labelings, offsets[:-1], strict=False):
        onehot[np.arange(n), offset + labels] = 1.0
    counts = onehot.sum(axis=0)
    squared = np.einsum("ij,ij->i", points, points)
    totals = np.zeros(len(labelings))
    for start in range(0, n, _BLOCK):
        block = slice(start, min(start + _BLOCK, n))
        gram = squared[block, None] + squared[None, :] - 2.0 * points[block] @ points.T
        distance = np.sqrt(np.maximum(gram, 0.0))
        distance[np.arange(distance.shape[0]), np.arange(block.start, block.stop)] = 0.0
        sums = distance @ onehot
        for j, (labels, offset) in enumerate(zip(labelings, offsets[:-1], strict=False)):
            own = offset + labels[block]
            per_cluster = sums[:, offset : offsets[j + 1]] / np.maximum(counts[offset : offsets[j + 1]], 1)
            per_cluster[:, counts[offset : offsets[j + 1]] == 0] = np.inf  # an empty cluster is never the nearest
            rows = np.arange(own.size)
            own_size = counts[own]
            a = np.where(own_size > 1, sums[rows, own] / np.maximum(own_size - 1, 1), 0.0)
            per_cluster[rows, labels[block]] = np.inf
            b = per_cluster.min(axis=1)
            denominator = np.maximum(a, b)
            score = np.where(
                (own_size > 1) & (denominator > 0), (b - a) / np.where(denominator > 0, denominator, 1), 0.0
            )
            totals[j] += score.sum()
    return [float(total / n) for total in totals]


def _sample_rows(keys: pa.ChunkedArray) -> NDArray[np.int64]:
    """The rows of the sample: the SAMPLE_SIZE members with the smallest seeded hash of their key.

    A hash rather than a draw of positions, so that a few members more or
    less leave the rest of the sample (and so the chosen k) as it was.
    """
    n = len(keys)
    if n <= SAMPLE_SIZE:
        return np.arange(n)
    hashes = pl.Series(values=keys.combine_chunks()).hash(seed=SEED).to_numpy()
    return np.sort(np.argpartition(hashes, SAMPLE_SIZE)[:SAMPLE_SIZE])


def _choose_k(
    sample: NDArray[np.float64], previous_k: int | None
) -> tuple[dict[int, float], NDArray[np.float64] | None]:
    """Silhouette per k on the sample and the centres of the chosen fit (None if the sample cannot be split)."""
    largest = min(K_RANGE.stop - 1, np.unique(sample, axis=0).shape[0], sample.shape[0] - 1)
    models = {
        k: KMeans(n_clusters=k, n_init=N_INIT, random_state=SEED).fit(sample) for k in range(K_RANGE.start, largest + 1)
    }
    if not models:
        return {}, None
    scores = dict(zip(models, silhouettes(sample, [m.labels_.astype(np.int64) for m in models.values()]), strict=True))
    best = max(scores, key=lambda k: (scores[k], -k))
    if previous_k in scores and scores[previous_k] >= scores[best] - K_TOLERANCE:
        best = previous_k  # within the noise of the sample: keep the previous k, and so the ids
    return scores, models[best].cluster_centers_


@dataclass(frozen=True)
class _Prior:
    """What a rebuild uses of the previous summary: ids, centroids (transformed units), k, the next id."""

    ids: tuple[int, ...] = ()
    centroids: NDArray[np.float64] | None = None
    k: int | None = None
    next_id: int = 0


def _read_previous(previous: Mapping[str, Any] | None) -> _Prior:
    if previous is None:
        return _Prior()
    try:
        clusters = list(previous["clusters"])
        ids = tuple(int(c["id"]) for c in clusters)
        next_id = max([int(previous.get("next_id", 0)), *(i + 1 for i in ids)])
        if list(previous["features"]) != list(FEATURES) or sorted(previous["log_features"]) != sorted(LOG_FEATURES):
            log.warning("previous clusters used other features: every cluster gets a fresh id")
            return _Prior(next_id=next_id)
        centroids = np.array([[float(c["centroid"][f]) for f in FEATURES] for c in clusters], dtype=np.float64)
        k = None if previous.get("k") is None else int(previous["k"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"the previous clusters cannot be read: {exc!r}", field="previous") from exc
    if len(set(ids)) != len(ids) or not np.isfinite(centroids).all():
        raise ValidationError("the previous clusters repeat an id or hold a non-finite centroid", field="previous")
    return _Prior(ids, centroids.reshape(len(ids), len(FEATURES)), k, next_id)


def _assign_ids(
    centres: NDArray[np.float64], sizes: NDArray[np.int64], prior: _Prior, previous_centres: NDArray[np.float64] | None
) -> tuple[list[int], int]:
    """Ids of the new clusters: matched previous ids, then fresh ones by decreasing size; and the next id."""
    ids: list[int | None] = [None] * centres.shape[0]
    if previous_centres is not None and prior.ids and centres.shape[0]:
        distance = cdist(centres, previous_centres)
        falls_in = distance.argmin(axis=0)  # the new cluster each previous centre falls in
        for new, old in zip(*linear_sum_assignment(distance), strict=True):
            if falls_in[old] == new:
                ids[new] = prior.ids[old]
    next_id = prior.next_id
    for new in sorted((i for i, v in enumerate(ids) if v is None), key=lambda i: (-int(sizes[i]), i)):
        ids[new], next_id = next_id, next_id + 1
    return [int(i) for i in ids if i is not None], next_id


def _standardization(transformed: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Population mean and standard deviation; a feature constant up to rounding gets scale 1 (and stays 0)."""
    if transformed.shape[0] == 0:
        return np.zeros(len(FEATURES)), np.ones(len(FEATURES))
    mean, spread = transformed.mean(axis=0), transformed.std(axis=0)
    return mean, np.where(spread > 1e-9 * np.maximum(np.abs(mean), 1.0), spread, 1.0)


def _fit(
    z: NDArray[np.float64], sample: NDArray[np.float64], previous_k: int | None
) -> tuple[NDArray[np.int64], int, dict[int, float], str | None]:
    """Labels 0..k-1 of every member, k, the silhouette by k, and why there is no split, if so."""
    n = z.shape[0]
    # One OpenMP thread: on 8 columns k-means gains nothing from threads, and on a busy machine their
    # synchronisation made the small sample fits a hundred times slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores, seeds = _choose_k(sample, previous_k) if n else ({}, None)
        if seeds is None:
            reason = "no member has bought yet" if n == 0 else "fewer than two distinct members"
            return np.zeros(n, dtype=np.int64), min(n, 1), scores, reason
        model = KMeans(n_clusters=seeds.shape[0], init=seeds, n_init=1, random_state=SEED).fit(z)
    return model.labels_.astype(np.int64), seeds.shape[0], scores, None


def cluster_members(features: ir.Table | pa.Table, previous: Mapping[str, Any] | None = None) -> ClusterResult:
    """Cluster members by their behaviour features; ``previous`` is the last build's :meth:`ClusterResult.summary`.

    Deterministic: the same members with the same features (in any row order)
    get the same ids. Fewer than two distinct feature vectors give a single
    cluster (none without members), with a ``reason``.
    """
    prior = _read_previous(previous)
    table = _to_arrow(features)
    raw = _raw_matrix(table)
    transformed = _transform(raw)
    mean, scale = _standardization(transformed)
    z = (transformed - mean) / scale
    sample = z[_sample_rows(table.column("member_key"))]
    labels, k, scores, reason = _fit(z, sample, prior.k)
    sizes = np.bincount(labels, minlength=k).astype(np.int64)
    members_of = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1]) if k else []
    centres = np.array([z[rows].mean(axis=0) for rows in members_of]).reshape(k, len(FEATURES))
    previous_centres = None if prior.centroids is None else (prior.centroids - mean) / scale
    ids, next_id = _assign_ids(centres, sizes, prior, previous_centres)
    n = raw.shape[0]
    profiles = [_profile(ids[c], raw[rows], centres[c], mean, scale, n) for c, rows in enumerate(members_of)]
    cluster = np.asarray(ids, dtype=np.int32)[labels] if k else np.zeros(0, dtype=np.int32)
    log.info("members clustered", extra={"members": n, "k": k})
    return ClusterResult(
        labels=pa.table({"member_key": table.column("member_key"), "cluster": pa.array(cluster, pa.int32())}),
        k=k,
        silhouette=scores,
        sample_size=sample.shape[0],
        clusters=tuple(sorted(profiles, key=lambda p: p.id)),
        mean=dict(zip(FEATURES, mean.tolist(), strict=True)),
        scale=dict(zip(FEATURES, scale.tolist(), strict=True)),
        next_id=next_id,
        reason=reason,
        members=n,
    )


def _profile(
    cluster_id: int,
    raw: NDArray[np.float64],
    centre: NDArray[np.float64],
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    total: int,
) -> ClusterProfile:
    standardized = dict(zip(FEATURES, centre.tolist(), strict=True))
    traits, description = describe(standardized)
    return ClusterProfile(
        id=cluster_id,
        size=raw.shape[0],
        share=raw.shape[0] / total,
        means=dict(zip(FEATURES, raw.mean(axis=0).tolist(), strict=True)),
        centre=standardized,
        centroid=dict(zip(FEATURES, (centre * scale + mean).tolist(), strict=True)),
        traits=traits,
        description=description,
    )
