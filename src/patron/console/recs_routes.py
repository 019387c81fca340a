"""Console pages of recommendations: the models page, an item's page, and the member page's list.

``GET /recs`` lists model versions with their offline metrics, placements with
their traffic split, and each placement's comparison of variants (CTR and
conversion with confidence intervals). ``GET /recs/items/{item_id}`` shows
similar items and items bought together. All need ``recs:read``.

The member page and item pages use the first placement of the matching kind
when one exists (so they show what members are served), otherwise the newest
ready version.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from patron.api.deps import Rt
from patron.auth.service import Principal
from patron.consent.service import personalization_block
from patron.console.access import User, can, page_user, require
from patron.console.rendering import render
from patron.errors import PatronError
from patron.recs import registry
from patron.recs.comparison import ComparisonRead
from patron.recs.registry import PlacementKind
from patron.recs.rules import REASONS, RecRequest
from patron.recs.service import compare, engine_for
from patron.recs.serving import RecEngine, RecList
from patron.runtime import Runtime

__all__ = ["RECS_KEYS", "member_panel", "router"]

router = APIRouter(include_in_schema=False)
LIST_SIZE = 10
SOURCES = ("personalized", "trending_in_segment", "trending", "similar", "bought_together", "session")
RECS_KEYS = {f"recs.reason.{code}" for code in REASONS} | {f"recs.source.{s}" for s in SOURCES}
RECS_KEYS |= {f"recs.status.{s}" for s in ("training", "ready", "failed", "retired")}
RECS_KEYS |= {f"recs.kind.{k}" for k in ("member", "similar", "bought_together", "session")}


def _engine(runtime: Runtime, kind: PlacementKind) -> tuple[RecEngine, str] | None:
    """The engine a page should use and a label saying where it comes from."""
    store = runtime.store
    for placement in registry.list_placements(store):
        if placement.kind == kind and placement.variants:
            variant = max(placement.variants, key=lambda v: v.share_bp)
            version = registry.get_version(store, variant.version_id)
            if version.directory:
                return engine_for(store, version.id, version.directory), f"{placement.name} / {variant.name}"
    for version in registry.list_versions(store):
        if version.status == "ready" and version.directory:
            return engine_for(store, version.id, version.directory), version.id
    return None


def _items(engine: RecEngine, found: RecList) -> list[dict[str, Any]]:
    titles = engine.facts.titles
    index = engine.item_index
    return [
        {
            "item_id": item.item_id,
            "title": str(titles[index[item.item_id]] or "") if item.item_id in index else "",
            "score": item.score,
            "reason": item.reason,
            "args": dict(item.reason_args),
        }
        for item in found.items
    ]


def member_panel(runtime: Runtime, user: Principal, member_key: str, segment: str | None) -> dict[str, Any] | None:
    """The member's recommendations with reasons, or None when the operator may not read them."""
    if not can(user, "recs:read"):
        return None
    try:
        chosen = _engine(runtime, "member")
    except PatronError:
        chosen = None
    if chosen is None:
        return {"rows": [], "source": None, "served_by": None}
    engine, served_by = chosen
    if personalization_block(runtime.store, member_key) is not None:  # consent withdrawn or processing restricted
        found = engine.for_session([], RecRequest(k=LIST_SIZE))
    else:
        found = engine.for_member(member_key, RecRequest(k=LIST_SIZE), segment=segment)
    return {"rows": _items(engine, found), "source": found.source, "served_by": served_by}


@router.get("/recs")
def models_page(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "recs:read")
    store = runtime.store
    placements = registry.list_placements(store)
    comparisons: dict[str, ComparisonRead | None] = {}
    for placement in placements:
        try:
            comparisons[placement.name] = compare(store, placement.name)
        except PatronError:
            comparisons[placement.name] = None
    context = {
        "user": page_user(user),
        "active": "recs",
        "versions": registry.list_versions(store),
        "placements": placements,
        "comparisons": comparisons,
    }
    return render(request, "recs.html", context)


@router.get("/recs/items/{item_id}")
def item_page(request: Request, runtime: Rt, user: User, item_id: str) -> Response:
    require(user, "recs:read")
    context: dict[str, Any] = {
        "user": page_user(user),
        "active": "recs",
        "item_id": item_id[:128],
        "together": [],
        "together_by": None,
    }
    similar = _engine(runtime, "similar")
    together = _engine(runtime, "bought_together")
    if similar is None:
        return render(request, "recs_item.html", {**context, "no_model": True})
    engine, served_by = similar
    if item_id not in engine.item_index:
        return render(request, "error.html", {"kind": "not_found", "signed_in": True}, status=404)
    k = engine.item_index[item_id]
    context |= {
        "no_model": False,
        "title": str(engine.facts.titles[k] or ""),
        "category": str(engine.facts.categories[engine.facts.category[k]]),
        "price": float(engine.facts.price[k]),
        "similar": _items(engine, engine.similar(item_id, RecRequest(k=LIST_SIZE))),
        "similar_by": served_by,
    }
    if together is not None:
        t_engine, t_by = together
        context |= {
            "together": _items(t_engine, t_engine.bought_together(item_id, RecRequest(k=LIST_SIZE))),
            "together_by": t_by,
        }
    return render(request, "recs_item.html", context)
