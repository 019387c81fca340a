"""Model versions and placements: which trained model serves where, and every change made to that.

A version goes ``training → ready`` (or ``failed``) and may later be
``retired``. A placement holds an ordered list of variants, each a ready
version with a traffic share in basis points summing to 10,000. Each change
writes the whole new configuration to the placement's history under the next
revision (unique per placement, so two concurrent changes cannot both win);
a rollback restores the configuration that preceded the current one, and
rolling back again walks further back.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.recs.assignment import VariantShare, validate_shares
from patron.recs.registry_models import RecModelVersion, RecPlacement, RecPlacementHistory, RecPlacementVariant

if TYPE_CHECKING:
    from pathlib import Path

    from patron.runtime import Runtime

__all__ = [
    "HistoryRead",
    "PlacementKind",
    "PlacementRead",
    "VariantIn",
    "VersionRead",
    "VersionStatus",
    "activate",
    "get_placement",
    "get_version",
    "list_placements",
    "list_versions",
    "placement_history",
    "register_version",
    "rollback",
    "set_variants",
    "train",
]

PlacementKind = Literal["member", "similar", "bought_together", "session"]
VersionStatus = Literal["training", "ready", "failed", "retired"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else (moment if moment.tzinfo else moment.replace(tzinfo=UTC))


class VersionRead(BaseModel):
    """A model version: what was trained, where it lives, how it scored offline."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    model: str
    params: dict[str, Any]
    as_of: datetime | None
    directory: str | None
    metrics: dict[str, Any] | None
    status: VersionStatus
    error: str | None
    created_by: str
    created_at: datetime


class VariantIn(BaseModel):
    """A variant of a placement: a version and its traffic share in basis points (10,000 = all)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    version_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    share_bp: int = Field(ge=0, le=10_000)


class PlacementRead(BaseModel):
    """A placement's kind, salt, current revision and variants (in bucket order)."""

    name: str
    kind: PlacementKind
    salt: str
    revision: int
    variants: list[VariantIn]
    updated_at: datetime


class HistoryRead(BaseModel):
    """One configuration a placement had."""

    revision: int
    action: Literal["create", "update", "rollback"]
    based_on: int | None
    variants: list[VariantIn]
    actor: str
    changed_at: datetime


def _version_read(row: RecModelVersion) -> VersionRead:
    read = VersionRead.model_validate(row)
    return read.model_copy(update={"as_of": _utc(read.as_of), "created_at": _utc(read.created_at)})


def _new_version_id(model: str) -> str:
    return f"{model[:24]}-{utcnow().strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def _manifest_fields(directory: Path) -> dict[str, Any]:
    import json

    manifest = json.loads((directory / "manifest.json").read_text())
    as_of = manifest.get("as_of")
    return {
        "directory": str(directory),
        "metrics": manifest.get("metrics") or manifest.get("offline_metrics"),
        "as_of": _utc(datetime.fromisoformat(as_of)) if isinstance(as_of, str) else None,
        "status": "ready",
    }


def register_version(
    store: OperationalStore, directory: Path, model: str, params: dict[str, Any], created_by: str
) -> VersionRead:
    """Record an already trained version directory (its manifest.json gives as_of and metrics)."""
    with store.session() as sess:
        row = RecModelVersion(id=_new_version_id(model), model=model, params=params, created_by=created_by[:128])
        for name, value in _manifest_fields(directory).items():
            setattr(row, name, value)
        sess.add(row)
        sess.flush()
        return _version_read(row)


def train(
    runtime: Runtime,
    model: str,
    params: dict[str, Any],
    created_by: str,
    *,
    as_of: datetime | None = None,
    progress: Any = None,
) -> VersionRead:
    """Train a version synchronously: recorded as ``training`` first, then ``ready`` or ``failed``."""
    from patron.recs.models import load_all

    known = load_all()
    if model not in known:
        raise ValidationError(f"unknown model {model!r}; known: {', '.join(sorted(known))}", field="model")
    version_id = _new_version_id(model)
    with runtime.store.session() as sess:
        sess.add(RecModelVersion(id=version_id, model=model, params=params, status="training", created_by=created_by))
    from patron.recs.training import train_version

    try:
        directory = train_version(runtime, model, params, as_of=as_of, progress=progress)
    except Exception as exc:
        with runtime.store.session() as sess:
            row = sess.get(RecModelVersion, version_id)
            assert row is not None
            row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"[:1024]
        if isinstance(exc, (ValueError, KeyError, TypeError)):
            raise ValidationError(f"training failed: {exc}", field="params") from exc
        raise
    with runtime.store.session() as sess:
        row = sess.get(RecModelVersion, version_id)
        assert row is not None
        for name, value in _manifest_fields(directory).items():
            setattr(row, name, value)
        sess.flush()
        return _version_read(row)


def list_versions(store: OperationalStore, model: str | None = None) -> list[VersionRead]:
    """Every version, newest first."""
    query = select(RecModelVersion).order_by(RecModelVersion.created_at.desc(), RecModelVersion.id.desc())
    if model is not None:
        query = query.where(RecModelVersion.model == model)
    with store.session() as sess:
        return [_version_read(r) for r in sess.scalars(query)]


def get_version(store: OperationalStore, version_id: str) -> VersionRead:
    """One version, or NotFoundError."""
    with store.session() as sess:
        row = sess.get(RecModelVersion, version_id)
        if row is None:
            raise NotFoundError(f"no model version {version_id!r}")
        return _version_read(row)


def _placement(sess: Session, name: str, *, lock: bool = False) -> RecPlacement:
    query = select(RecPlacement).where(RecPlacement.name == name)
    row = sess.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFoundError(f"no placement {name!r}")
    return row


def _variants(sess: Session, placement: RecPlacement) -> list[VariantIn]:
    rows = sess.scalars(
        select(RecPlacementVariant)
        .where(RecPlacementVariant.placement_id == placement.id)
        .order_by(RecPlacementVariant.position)
    )
    return [VariantIn(name=r.name, version_id=r.version_id, share_bp=r.share_bp) for r in rows]


def _read(sess: Session, placement: RecPlacement) -> PlacementRead:
    return PlacementRead(
        name=placement.name,
        kind=placement.kind,
        salt=placement.salt,
        revision=placement.revision,
        variants=_variants(sess, placement),
        updated_at=_utc(placement.updated_at) or utcnow(),
    )


def _check(sess: Session, variants: Sequence[VariantIn]) -> None:
    try:
        validate_shares([VariantShare(v.name, v.share_bp) for v in variants])
    except ValueError as exc:
        raise ValidationError(str(exc), field="variants") from None
    for position, v in enumerate(variants):
        row = sess.get(RecModelVersion, v.version_id)
        if row is None:
            raise ValidationError(f"no model version {v.version_id!r}", field=f"variants.{position}.version_id")
        if row.status != "ready":
            raise ConflictError(f"model version {v.version_id!r} is {row.status}, not ready")


def _write(
    sess: Session,
    placement: RecPlacement,
    variants: Sequence[VariantIn],
    actor: str,
    action: str,
    based_on: int | None = None,
) -> None:
    _check(sess, variants)
    for old in sess.scalars(select(RecPlacementVariant).where(RecPlacementVariant.placement_id == placement.id)):
        sess.delete(old)
    sess.flush()
    for position, v in enumerate(variants):
        sess.add(
            RecPlacementVariant(
                placement_id=placement.id, name=v.name, version_id=v.version_id, share_bp=v.share_bp, position=position
            )
        )
    placement.revision += 1
    placement.updated_at = utcnow()
    sess.add(
        RecPlacementHistory(
            placement_id=placement.id,
            revision=placement.revision,
            action=action,
            based_on=based_on,
            variants=[v.model_dump() for v in variants],
            actor=actor[:128],
        )
    )
    try:
        sess.flush()
    except IntegrityError as exc:
        raise ConflictError(f"placement {placement.name!r} was changed concurrently; retry") from exc


def set_variants(
    store: OperationalStore,
    name: str,
    variants: Sequence[VariantIn],
    actor: str,
    kind: PlacementKind | None = None,
) -> PlacementRead:
    """Create the placement (``kind`` required) or replace its variants; recorded in its history."""
    with store.session() as sess:
        existing = sess.scalar(select(RecPlacement).where(RecPlacement.name == name).with_for_update())
        if existing is None:
            if kind is None:
                raise ValidationError(f"placement {name!r} is new: give its kind", field="kind")
            existing = RecPlacement(name=name, kind=kind, salt=secrets.token_hex(8), revision=0)
            sess.add(existing)
            try:
                sess.flush()
            except IntegrityError as exc:
                raise ConflictError(f"placement {name!r} was created concurrently; retry") from exc
            action = "create"
        elif kind is not None and kind != existing.kind:
            raise ConflictError(f"placement {name!r} serves {existing.kind} lists, not {kind}")
        else:
            action = "update"
        _write(sess, existing, variants, actor, action)
        return _read(sess, existing)


def activate(
    store: OperationalStore, name: str, version_id: str, actor: str, kind: PlacementKind | None = None
) -> PlacementRead:
    """Serve one version to all of a placement's traffic (a single variant ``main``)."""
    return set_variants(store, name, [VariantIn(name="main", version_id=version_id, share_bp=10_000)], actor, kind)


def _source(entry: RecPlacementHistory) -> int:
    return entry.based_on if entry.based_on is not None else entry.revision


def rollback(store: OperationalStore, name: str, actor: str) -> PlacementRead:
    """Restore the configuration that preceded the current one, in one transaction."""
    with store.session() as sess:
        placement = _placement(sess, name, lock=True)
        history = {
            h.revision: h
            for h in sess.scalars(select(RecPlacementHistory).where(RecPlacementHistory.placement_id == placement.id))
        }
        current = history.get(placement.revision)
        target = history.get(_source(current) - 1) if current is not None else None
        if target is None:
            raise ConflictError(f"placement {name!r} has no earlier configuration to roll back to")
        variants = [VariantIn.model_validate(v) for v in target.variants]
        _write(sess, placement, variants, actor, "rollback", based_on=_source(target))
        return _read(sess, placement)


def get_placement(store: OperationalStore, name: str) -> PlacementRead:
    """One placement with its variants, or NotFoundError."""
    with store.session() as sess:
        return _read(sess, _placement(sess, name))


def list_placements(store: OperationalStore) -> list[PlacementRead]:
    """Every placement, by name."""
    with store.session() as sess:
        return [_read(sess, p) for p in sess.scalars(select(RecPlacement).order_by(RecPlacement.name))]


def placement_history(store: OperationalStore, name: str) -> list[HistoryRead]:
    """Every configuration of a placement, newest first."""
    with store.session() as sess:
        placement = _placement(sess, name)
        rows = sess.scalars(
            select(RecPlacementHistory)
            .where(RecPlacementHistory.placement_id == placement.id)
            .order_by(RecPlacementHistory.revision.desc())
        )
        return [
            HistoryRead(
                revision=h.revision,
                action=h.action,
                based_on=h.based_on,
                variants=[VariantIn.model_validate(v) for v in h.variants],
                actor=h.actor,
                changed_at=_utc(h.changed_at) or utcnow(),
            )
            for h in rows
        ]
