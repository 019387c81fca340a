"""API routes: recommendations: serving, feedback and events, placements with A/B variants, model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.api.deps import Rt, audit, require
from patron.api.lean import lean_get
from patron.auth.service import Principal
from patron.consent.service import personalization_block
from patron.errors import ValidationError
from patron.recs import registry, service
from patron.recs.comparison import ComparisonRead
from patron.recs.registry import HistoryRead, PlacementKind, PlacementRead, VariantIn, VersionRead
from patron.recs.rules import RecRequest
from patron.recs.service import FeedbackIn, FeedbackRead, Served
from patron.recs.tracking import EventBatch, EventBatchResult, record_events
from patron.runtime import Runtime

router = APIRouter(prefix="/recs", tags=["recommendations"])

Readers = Annotated[Principal, Depends(require("recs:read"))]
Trackers = Annotated[Principal, Depends(require("recs:track"))]
Managers = Annotated[Principal, Depends(require("recs:manage"))]

MemberKey = Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$", description="The member's opaque key")]
ItemId = Annotated[str, Path(min_length=1, max_length=128, description="The product key")]
PlacementName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
VersionId = Annotated[str, Path(min_length=1, max_length=64)]
PlacementQuery = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="The placement to serve")]
UnitQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=128, description="Member key or session id that A/B assignment uses"),
]
ItemList = Annotated[list[str] | None, Query(max_length=200)]


async def _filter_fields(
    categories: ItemList = None,
    exclude_categories: ItemList = None,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    exclude: ItemList = None,
    whitelist: ItemList = None,
    exclude_purchased: bool = True,
    diversity: Annotated[float | None, Query(ge=0, le=1, description="0 = most diverse, 1 = score order")] = None,
    k: Annotated[int, Query(ge=1, le=200)] = 10,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
) -> RecRequest:
    fields: dict[str, Any] = {
        "categories": categories,
        "exclude_categories": exclude_categories,
        "price_min": price_min,
        "price_max": price_max,
        "exclude": exclude,
        "whitelist": whitelist,
        "exclude_purchased": exclude_purchased,
        "diversity": diversity,
        "k": k,
        "page": page,
    }
    try:
        return service.request_of(**fields)
    except ValidationError as exc:
        raise ValidationError(str(exc), field=f"query.{exc.field}") from None


Rules = Annotated[RecRequest, Depends(_filter_fields)]


def _json(served: Served) -> Response:
    """The served list as JSON, skipping FastAPI's second validation of an already valid model (the hot path)."""
    return Response(served.model_dump_json(), media_type="application/json")


class SessionRequest(BaseModel):
    """An anonymous (or not yet identified) visitor's recent items, newest last."""

    model_config = ConfigDict(extra="forbid")

    session_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    item_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(min_length=1, max_length=50)
    placement: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = "session"
    rules: RecRequest = Field(default_factory=RecRequest)


class PlacementChange(BaseModel):
    """The new variants of a placement (shares in basis points summing to 10,000); ``kind`` when creating it."""

    model_config = ConfigDict(extra="forbid")

    kind: PlacementKind | None = None
    variants: list[VariantIn] = Field(min_length=1, max_length=20)


class VersionCreate(BaseModel):
    """A model to train now on the warehouse, with its hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    params: dict[str, Any] = Field(default_factory=dict)
    as_of: datetime | None = Field(default=None, description="Train on what happened before (default: the data's end)")


@lean_get(
    router,
    "/members/{member_key}",
    "recs:read",
    summary="A member's recommendations with reasons, from the placement's variant for this member",
    response_model=Served,
)
async def member_recs(
    runtime: Runtime, member_key: MemberKey, rules: Rules, placement: PlacementQuery = "home"
) -> Response:
    # a lean route (patron.api.lean) on the event loop: the engine answers in about a millisecond from memory,
    # so no thread hop; only a version's first use loads it from disk
    blocked = personalization_block(runtime.store, member_key)  # a per-process cache: no database round trip
    if blocked is not None:  # consent refused or processing restricted: the list anyone gets, nothing of theirs
        served = service.serve(runtime.store, placement, "member", member_key, lambda e: e.for_session([], rules))
        served.fallback_reason = blocked
        return _json(served)
    return _json(
        service.serve(runtime.store, placement, "member", member_key, lambda e: e.for_member(member_key, rules))
    )


@router.post(
    "/sessions", summary="Recommendations for a session's recent items (no member needed)", response_model=Served
)
async def session_recs(body: SessionRequest, runtime: Rt, _caller: Readers) -> Response:
    items = body.item_ids
    return _json(
        service.serve(
            runtime.store, body.placement, "session", body.session_id, lambda e: e.for_session(items, body.rules)
        )
    )


@lean_get(router, "/items/{item_id}/similar", "recs:read", summary="Items similar to an item", response_model=Served)
async def similar(
    runtime: Runtime,
    item_id: ItemId,
    rules: Rules,
    placement: PlacementQuery = "pdp_similar",
    unit_id: UnitQuery = None,
) -> Response:
    unit = unit_id or item_id
    return _json(service.serve(runtime.store, placement, "similar", unit, lambda e: e.similar(item_id, rules)))


@lean_get(
    router,
    "/items/{item_id}/bought-together",
    "recs:read",
    summary="Items often bought together with an item",
    response_model=Served,
)
async def bought_together(
    runtime: Runtime,
    item_id: ItemId,
    rules: Rules,
    placement: PlacementQuery = "cart",
    unit_id: UnitQuery = None,
) -> Response:
    unit = unit_id or item_id
    return _json(
        service.serve(runtime.store, placement, "bought_together", unit, lambda e: e.bought_together(item_id, rules))
    )


@router.post(
    "/feedback",
    summary="Record a member's interaction; their next list reflects it without a retrain",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackRead,
)
def feedback(body: FeedbackIn, runtime: Rt, _caller: Trackers) -> FeedbackRead:
    return service.record_feedback(runtime.store, body)


@router.post(
    "/events",
    summary="Record impressions, clicks and purchases (a batch; resending an idempotency key is harmless)",
    response_model=EventBatchResult,
)
def events(body: EventBatch, runtime: Rt, _caller: Trackers) -> EventBatchResult:
    return record_events(runtime.store, body.events)


@router.get(
    "/placements", summary="Placements with their variants and traffic shares", response_model=list[PlacementRead]
)
def placements(runtime: Rt, _caller: Readers) -> list[PlacementRead]:
    return registry.list_placements(runtime.store)


@router.put(
    "/placements/{name}",
    summary="Create a placement or replace its variants and shares (kept in its history)",
    response_model=PlacementRead,
)
def change_placement(
    name: PlacementName, body: PlacementChange, request: Request, runtime: Rt, caller: Managers
) -> PlacementRead:
    changed = service.configure(runtime.store, name, body.variants, caller.label, body.kind)
    variants = [v.model_dump() for v in changed.variants]
    audit(request, runtime, caller.label, "rec_placement.update", f"rec_placement:{name}", variants=variants)
    return changed


@router.post(
    "/placements/{name}/rollback",
    summary="Restore the placement's previous configuration now",
    response_model=PlacementRead,
)
def rollback(name: PlacementName, request: Request, runtime: Rt, caller: Managers) -> PlacementRead:
    restored = service.rollback(runtime.store, name, caller.label)
    audit(request, runtime, caller.label, "rec_placement.rollback", f"rec_placement:{name}", revision=restored.revision)
    return restored


@router.get(
    "/placements/{name}/history",
    summary="Every configuration of a placement, newest first",
    response_model=list[HistoryRead],
)
def history(name: PlacementName, runtime: Rt, _caller: Readers) -> list[HistoryRead]:
    return registry.placement_history(runtime.store, name)


@router.get(
    "/placements/{name}/comparison",
    summary="CTR and conversion per variant with Wilson intervals, and each variant against the control",
    response_model=ComparisonRead,
)
def comparison(
    name: PlacementName,
    runtime: Rt,
    _caller: Readers,
    control: Annotated[str | None, Query(max_length=64, description="Default: the first variant")] = None,
    confidence: Annotated[float, Query(gt=0.5, lt=1)] = 0.95,
) -> ComparisonRead:
    return service.compare(runtime.store, name, control, confidence)


@router.get("/versions", summary="Model versions, newest first", response_model=list[VersionRead])
def versions(
    runtime: Rt,
    _caller: Readers,
    model: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
) -> list[VersionRead]:
    return registry.list_versions(runtime.store, model)


@router.post(
    "/versions",
    summary="Train a model version now (synchronous: answers when training ends)",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionRead,
)
def train(body: VersionCreate, request: Request, runtime: Rt, caller: Managers) -> VersionRead:
    created = registry.train(runtime, body.model, body.params, caller.label, as_of=body.as_of)
    audit(request, runtime, caller.label, "rec_version.train", f"rec_version:{created.id}", model=body.model)
    return created


@router.get("/versions/{version_id}", summary="One model version with its offline metrics", response_model=VersionRead)
def version(version_id: VersionId, runtime: Rt, _caller: Readers) -> VersionRead:
    return registry.get_version(runtime.store, version_id)
