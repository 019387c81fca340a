"""Authorization-walk entries of the recommendation routes.

The samples need a trained version and placements on the walk's world; they
are made once per world, on first use, and kept in ``_SETUP``.
"""

from __future__ import annotations

from dataclasses import dataclass

from patron.recs import registry, service
from patron.recs.registry import VariantIn
from tests.api.walk_types import Bad, Call, Route, World, body


@dataclass(frozen=True)
class _Setup:
    version_id: str
    item_id: str


_SETUP: dict[int, _Setup] = {}
_KINDS = {"home": "member", "pdp_similar": "similar", "cart": "bought_together", "session": "session"}


def _setup(w: World) -> _Setup:
    """A popularity version serving the four default placements, and an item it knows."""
    found = _SETUP.get(id(w))
    if found is None:
        store = w.runtime.store
        version = registry.train(w.runtime, "popularity", {}, "walk")
        for name, kind in _KINDS.items():
            variants = [VariantIn(name="main", version_id=version.id, share_bp=10_000)]
            service.configure(store, name, variants, "walk", kind)  # type: ignore[arg-type]
        engine = service.engine_for(store, version.id, version.directory or "")
        item = engine.for_member(w.member_key).items[0].item_id
        found = _SETUP[id(w)] = _Setup(version.id, item)
    return found


def _item(w: World) -> str:
    return _setup(w).item_id


def _version(w: World) -> str:
    return _setup(w).version_id


def _home(w: World) -> str:
    """The member placement the setup made."""
    _setup(w)
    return "home"


def _two_configurations(w: World) -> str:
    """A fresh placement with two configurations, so that each rollback has one to undo."""
    name = w.unique("walk-pl")
    one = [VariantIn(name="main", version_id=_version(w), share_bp=10_000)]
    two = [
        VariantIn(name="a", version_id=_version(w), share_bp=5_000),
        VariantIn(name="b", version_id=_version(w), share_bp=5_000),
    ]
    registry.set_variants(w.runtime.store, name, one, "walk", "member")
    registry.set_variants(w.runtime.store, name, two, "walk")
    return name


def _event(w: World, **fields: object) -> dict[str, object]:
    return {
        "placement": "home",
        "variant": "main",
        "unit_id": w.member_key,
        "item_id": _item(w),
        "kind": "impression",
        "idempotency_key": w.unique("walk-ev"),
        **fields,
    }


def _variants(w: World, share: int = 10_000) -> list[dict[str, object]]:
    return [{"name": "main", "version_id": _version(w), "share_bp": share}]


MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/recs/members/{member_key}"): Route(
        "recs:read",
        lambda w, _role: Call(
            path={"member_key": w.member_key},
            params={"placement": "home", "k": 5, "page": 2, "price_max": 50, "diversity": 0.5, "exclude": [_item(w)]},
        ),
        (
            Bad("short key", lambda _w: Call(path={"member_key": "m0123"}), ("path", "member_key")),
            Bad("k 0", lambda w: Call(path={"member_key": w.member_key}, params={"k": 0}), ("query", "k")),
            Bad(
                "price range upside down",
                lambda w: Call(path={"member_key": w.member_key}, params={"price_min": 9, "price_max": 1}),
                ("query", "price_min"),
            ),
            Bad(
                "placement upper-case",
                lambda w: Call(path={"member_key": w.member_key}, params={"placement": "HOME"}),
                ("query", "placement"),
            ),
        ),
    ),
    ("POST", "/api/v1/recs/sessions"): Route(
        "recs:read",
        lambda w, _role: body({"session_id": w.unique("walk-s"), "item_ids": [_item(w)], "rules": {"k": 3}}),
        (
            Bad("no items", lambda w: body({"session_id": "s1", "item_ids": []}), ("body", "item_ids")),
            Bad("no session id", lambda w: body({"item_ids": [_item(w)]}), ("body", "session_id")),
            Bad(
                "k 1000",
                lambda w: body({"session_id": "s1", "item_ids": [_item(w)], "rules": {"k": 1000}}),
                ("body", "rules", "k"),
            ),
        ),
    ),
    ("GET", "/api/v1/recs/items/{item_id}/similar"): Route(
        "recs:read",
        lambda w, _role: Call(path={"item_id": _item(w)}, params={"unit_id": w.member_key, "k": 4}),
        (
            Bad("k 500", lambda w: Call(path={"item_id": _item(w)}, params={"k": 500}), ("query", "k")),
            Bad(
                "unit id empty",
                lambda w: Call(path={"item_id": _item(w)}, params={"unit_id": ""}),
                ("query", "unit_id"),
            ),
        ),
    ),
    ("GET", "/api/v1/recs/items/{item_id}/bought-together"): Route(
        "recs:read",
        lambda w, _role: Call(path={"item_id": _item(w)}, params={"k": 4}),
        (Bad("page 0", lambda w: Call(path={"item_id": _item(w)}, params={"page": 0}), ("query", "page")),),
    ),
    ("POST", "/api/v1/recs/feedback"): Route(
        "recs:track",
        lambda w, _role: body({"member_key": w.member_key, "item_id": _item(w), "event_type": "view"}),
        (
            Bad(
                "unknown event type",
                lambda w: body({"member_key": w.member_key, "item_id": "x", "event_type": "lick"}),
                ("body", "event_type"),
            ),
            Bad(
                "bad member key",
                lambda _w: body({"member_key": "M1", "item_id": "x", "event_type": "view"}),
                ("body", "member_key"),
            ),
        ),
    ),
    ("POST", "/api/v1/recs/events"): Route(
        "recs:track",
        lambda w, _role: body({"events": [_event(w), _event(w, kind="click")]}),
        (
            Bad("no events", lambda _w: body({"events": []}), ("body", "events")),
            Bad("unknown kind", lambda w: body({"events": [_event(w, kind="view")]}), ("body", "events", "0", "kind")),
            Bad(
                "negative revenue",
                lambda w: body({"events": [_event(w, kind="purchase", revenue=-1)]}),
                ("body", "events", "0", "revenue"),
            ),
        ),
    ),
    ("GET", "/api/v1/recs/placements"): Route("recs:read"),
    ("PUT", "/api/v1/recs/placements/{name}"): Route(
        "recs:manage",
        lambda w, _role: Call(
            path={"name": w.unique("walk-pl")}, body={"kind": "member", "variants": _variants(w)}, has_body=True
        ),
        (
            Bad(
                "name with a star",
                lambda w: Call(path={"name": "a*b"}, body={"kind": "member", "variants": _variants(w)}, has_body=True),
                ("path", "name"),
            ),
            Bad(
                "share above 10000",
                lambda w: Call(path={"name": "home"}, body={"variants": _variants(w, 20_000)}, has_body=True),
                ("body", "variants", "0", "share_bp"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "shares short of 10000",
                lambda w: Call(
                    path={"name": "home"}, body={"kind": "member", "variants": _variants(w, 9_000)}, has_body=True
                ),
                ("variants",),
            ),
        ),
    ),
    ("POST", "/api/v1/recs/placements/{name}/rollback"): Route(
        "recs:manage",
        lambda w, _role: Call(path={"name": _two_configurations(w)}),
        (Bad("name too long", lambda _w: Call(path={"name": "x" * 65}), ("path", "name")),),
    ),
    ("GET", "/api/v1/recs/placements/{name}/history"): Route(
        "recs:read",
        lambda w, _role: Call(path={"name": _home(w)}),
        (Bad("upper-case name", lambda _w: Call(path={"name": "Home"}), ("path", "name")),),
    ),
    ("GET", "/api/v1/recs/placements/{name}/comparison"): Route(
        "recs:read",
        lambda w, _role: Call(path={"name": _home(w)}, params={"confidence": 0.9}),
        (
            Bad(
                "confidence 2",
                lambda _w: Call(path={"name": "home"}, params={"confidence": 2}),
                ("query", "confidence"),
            ),
        ),
    ),
    ("GET", "/api/v1/recs/versions"): Route(
        "recs:read",
        lambda _w, _role: Call(params={"model": "popularity"}),
        (Bad("model with a space", lambda _w: Call(params={"model": "a b"}), ("query", "model")),),
    ),
    ("POST", "/api/v1/recs/versions"): Route(
        "recs:manage",
        lambda _w, _role: body({"model": "popularity", "params": {}}),
        (
            Bad("model upper-case", lambda _w: body({"model": "ALS"}), ("body", "model")),
            Bad("params a list", lambda _w: body({"model": "popularity", "params": [1]}), ("body", "params")),
        ),
    ),
    ("GET", "/api/v1/recs/versions/{version_id}"): Route(
        "recs:read",
        lambda w, _role: Call(path={"version_id": _version(w)}),
        (Bad("id too long", lambda _w: Call(path={"version_id": "v" * 65}), ("path", "version_id")),),
    ),
}
