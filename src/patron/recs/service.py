"""Serving placements: assign a variant, ask its model version's engine, return the list with a request id.

Engines are loaded once per process and version directory and kept
(:class:`RecEngine` is thread-safe). A placement's configuration is cached for
``PLACEMENT_TTL`` seconds; a change made through this module (``configure``,
``rollback``) takes effect in this process at once, and in other processes
within the TTL.

Feedback is stored in ``rec_feedback`` first, then folded into every loaded
engine of the store, so a member's next list reflects it without a retrain.
An engine loaded later replays the stored feedback newer than its version's
``as_of``; feedback ids already replayed are never applied twice.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from patron.consent.rules import BlockReason
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.recs import registry
from patron.recs.assignment import VariantShare, assign
from patron.recs.comparison import ComparisonRead, VariantStats, compare_variants
from patron.recs.registry import PlacementKind, PlacementRead, VariantIn
from patron.recs.registry_models import RecFeedback, RecModelVersion
from patron.recs.rules import RecRequest
from patron.recs.serving import RecEngine, RecItem, RecList, Source
from patron.recs.tracking import variant_stats

__all__ = [
    "clear_cache",
    "PLACEMENT_TTL",
    "FeedbackIn",
    "FeedbackRead",
    "Served",
    "compare",
    "configure",
    "engine_for",
    "record_feedback",
    "request_of",
    "rollback",
    "serve",
]

PLACEMENT_TTL = 2.0
FeedbackType = Literal["view", "fav", "cart", "purchase", "returned"]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class Served(BaseModel):
    """A served page of recommendations, the variant and version that produced it, and its request id."""

    request_id: str
    placement: str
    variant: str
    version_id: str
    items: list[RecItem]
    source: Source
    page: int
    k: int
    has_more: bool
    fallback_reason: BlockReason | None = Field(
        default=None, description="Why a member's list is not personalized: consent denied or withdrawn, or restricted"
    )


class FeedbackIn(BaseModel):
    """A member's interaction with an item, to fold into their recommendations now."""

    model_config = ConfigDict(extra="forbid")

    member_key: Annotated[str, StringConstraints(pattern=r"^m[0-9a-f]{16}$")]
    item_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    event_type: FeedbackType
    weight: float | None = Field(default=None, gt=0, le=1_000, description="Default: the version's weight of the type")
    occurred_at: Annotated[datetime, AfterValidator(_utc)] | None = None


class FeedbackRead(BaseModel):
    """The stored feedback and how many loaded model versions folded it in."""

    id: int
    member_key: str
    item_id: str
    event_type: FeedbackType
    weight: float | None
    occurred_at: datetime
    versions_updated: int


@dataclass(frozen=True)
class _Variant:
    name: str
    version_id: str
    directory: str
    share_bp: int


@dataclass(frozen=True)
class _Placement:
    name: str
    kind: str
    salt: str
    variants: tuple[_Variant, ...]
    expires: float


@dataclass
class _Loaded:
    engine: RecEngine
    as_of: datetime | None  # feedback up to the version's as_of is already in its training data
    last_feedback_id: int = 0


_lock = threading.RLock()
_engines: dict[tuple[str, str], _Loaded] = {}
_placements: dict[tuple[str, str], _Placement] = {}


def _load_placement(store: OperationalStore, name: str) -> _Placement:
    read = registry.get_placement(store, name)
    with store.session() as sess:
        rows = {
            r.id: r
            for r in sess.scalars(
                select(RecModelVersion).where(RecModelVersion.id.in_([v.version_id for v in read.variants]))
            )
        }
    variants = tuple(
        _Variant(v.name, v.version_id, rows[v.version_id].directory or "", v.share_bp) for v in read.variants
    )
    return _Placement(name, read.kind, read.salt, variants, time.monotonic() + PLACEMENT_TTL)


def _placement(store: OperationalStore, name: str) -> _Placement:
    key = (store.url, name)
    cached = _placements.get(key)
    if cached is None or cached.expires < time.monotonic():
        cached = _load_placement(store, name)
        _placements[key] = cached
    return cached


def _replay(store: OperationalStore, loaded: _Loaded) -> int:
    """Fold stored feedback not yet replayed and newer than the version's ``as_of`` into the engine."""
    query = select(RecFeedback).where(RecFeedback.id > loaded.last_feedback_id).order_by(RecFeedback.id)
    applied = 0
    with store.session() as sess:
        for fb in sess.scalars(query):
            loaded.last_feedback_id = fb.id
            if loaded.as_of is None or _utc(fb.occurred_at) > loaded.as_of:
                applied += _apply(loaded.engine, fb)
    return applied


def _apply(engine: RecEngine, fb: RecFeedback) -> int:
    try:
        engine.with_feedback(fb.member_key, fb.item_id, fb.event_type, fb.weight)
    except NotFoundError:  # an item this version does not know
        return 0
    return 1


def engine_for(store: OperationalStore, version_id: str, directory: str) -> RecEngine:
    """The process's engine of a version, loaded (and its feedback replayed) on first use."""
    key = (store.url, directory)
    loaded = _engines.get(key)
    if loaded is not None:
        return loaded.engine
    with _lock:
        loaded = _engines.get(key)
        if loaded is None:
            if not directory:
                raise ConflictError(f"model version {version_id!r} has no artefacts")
            loaded = _Loaded(RecEngine.open(directory), registry.get_version(store, version_id).as_of)
            _replay(store, loaded)
            _engines[key] = loaded
        return loaded.engine


def serve(
    store: OperationalStore,
    placement: str,
    kind: PlacementKind,
    unit_id: str,
    call: Callable[[RecEngine], RecList],
) -> Served:
    """Assign ``unit_id`` to a variant of ``placement`` and let its engine make the list."""
    config = _placement(store, placement)
    if config.kind != kind:
        raise ValidationError(f"placement {placement!r} serves {config.kind} lists, not {kind}", field="placement")
    shares = [VariantShare(v.name, v.share_bp) for v in config.variants]
    chosen = assign(config.salt, placement, unit_id, shares)
    variant = next(v for v in config.variants if v.name == chosen)
    found = call(engine_for(store, variant.version_id, variant.directory))
    # both parts are validated models already: construct without validating them again (the hot path)
    return Served.model_construct(
        request_id=secrets.token_hex(12),
        placement=placement,
        variant=variant.name,
        version_id=variant.version_id,
        items=found.items,
        source=found.source,
        page=found.page,
        k=found.k,
        has_more=found.has_more,
    )


def clear_cache() -> None:
    """Forget every loaded engine and cached placement (the next request loads them again, replaying feedback)."""
    with _lock:
        _engines.clear()
        _placements.clear()


def _warm(store: OperationalStore, name: str) -> None:
    with _lock:
        _placements.pop((store.url, name), None)
    config = _placement(store, name)
    for v in config.variants:
        engine_for(store, v.version_id, v.directory)


def configure(
    store: OperationalStore,
    name: str,
    variants: Sequence[VariantIn],
    actor: str,
    kind: PlacementKind | None = None,
) -> PlacementRead:
    """Create or change a placement, then load its engines so the next request is served at once."""
    changed = registry.set_variants(store, name, variants, actor, kind)
    _warm(store, name)
    return changed


def rollback(store: OperationalStore, name: str, actor: str) -> PlacementRead:
    """Restore the placement's previous configuration; this process serves it from the next request."""
    restored = registry.rollback(store, name, actor)
    _warm(store, name)
    return restored


def record_feedback(store: OperationalStore, feedback: FeedbackIn) -> FeedbackRead:
    """Store the feedback, then fold it into every loaded engine of this store."""
    occurred = feedback.occurred_at or utcnow()
    with store.session() as sess:
        row = RecFeedback(
            member_key=feedback.member_key,
            item_id=feedback.item_id,
            event_type=feedback.event_type,
            weight=feedback.weight,
            occurred_at=occurred,
        )
        sess.add(row)
        sess.flush()
        row_id = row.id
    updated = 0
    with _lock:
        loaded = [v for k, v in _engines.items() if k[0] == store.url]
        for item in loaded:
            updated += _replay(store, item)
    return FeedbackRead(
        id=row_id,
        member_key=feedback.member_key,
        item_id=feedback.item_id,
        event_type=feedback.event_type,
        weight=feedback.weight,
        occurred_at=occurred,
        versions_updated=updated,
    )


def compare(
    store: OperationalStore, placement: str, control: str | None = None, confidence: float = 0.95
) -> ComparisonRead:
    """CTR and conversion per variant of a placement (current variants first), against the control."""
    current = registry.get_placement(store, placement)
    found = variant_stats(store, placement)
    names = [v.name for v in current.variants] + sorted(set(found) - {v.name for v in current.variants})
    if control is not None and control not in names:
        raise ValidationError(f"placement {placement!r} has no variant {control!r}", field="control")
    stats = [found.get(name, VariantStats(name)) for name in names]
    return compare_variants(placement, stats, control, confidence)


def request_of(**fields: object) -> RecRequest:
    """A :class:`RecRequest` from filter fields, naming the first bad one."""
    from pydantic import ValidationError as PydanticError

    try:
        return RecRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except PydanticError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "price_min"
        raise ValidationError(str(first["msg"]).removeprefix("Value error, "), field=field) from None
