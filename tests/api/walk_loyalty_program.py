"""Authorization-walk entries of the loyalty program's routes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from patron.loyalty.earning import OrderIn
from patron.loyalty.program import record_order
from patron.loyalty.program_rules import EarningRuleCreate, create_rule
from patron.loyalty.tiers import TierCreate, create_tier
from tests.api.walk_types import Bad, Call, Route, World, body

PAID = "2026-06-18T10:00:00+08:00"


def _number(w: World, prefix: str) -> int:
    """A number of its own for each call (tier thresholds are unique)."""
    return int(hashlib.sha256(w.unique(prefix).encode()).hexdigest()[:8], 16)


def _member(w: World) -> str:
    return "m" + hashlib.sha256(w.unique("walk-member").encode()).hexdigest()[:16]


def _order(w: World, **fields: object) -> dict[str, object]:
    lines = [{"sku": "tea", "category": "food", "amount": "88.00"}]
    return {"order_key": w.unique("walk-order"), "member_key": w.member_key, "paid_at": PAID, "lines": lines, **fields}


def _keyed(payload: object, key: str) -> Call:
    return Call(params={"idempotency_key": key}, body=payload, has_body=True)


def _tier(w: World) -> str:
    code = w.unique("walk-tier")
    create_tier(w.runtime.store, TierCreate(code=code, name="walk", threshold=Decimal(_number(w, "threshold"))))
    return code


def _rule(w: World) -> int:
    data = EarningRuleCreate(name=w.unique("walk-rule"), kind="cap", period="day", max_points=1000)
    return create_rule(w.runtime.store, data, "walk").id


def _recorded_order(w: World) -> str:
    placed = OrderIn.model_validate({**_order(w), "paid_at": datetime.now(UTC)})
    record_order(w.runtime.store, placed, w.unique("walk-key"), "walk")
    return placed.order_key


def _event(w: World, **fields: object) -> dict[str, object]:
    return {"member_key": _member(w), "event": "sign_up", "occurred_at": PAID, **fields}


ORDERS = "/api/v1/loyalty/orders"
MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/api/v1/loyalty/settings"): Route("loyalty:read"),
    ("PATCH", "/api/v1/loyalty/settings"): Route(
        "loyalty:manage",
        lambda _w, _role: body({"return_window_days": 7}),
        (
            Bad("unknown policy", lambda _w: body({"downgrade_policy": "yearly"}), ("body", "downgrade_policy")),
            Bad("window 0 days", lambda _w: body({"tier_window_days": 0}), ("body", "tier_window_days")),
            Bad("unknown time zone", lambda _w: body({"timezone": "Mars/Olympus"}), ("timezone",)),
        ),
    ),
    ("GET", "/api/v1/loyalty/tiers"): Route("loyalty:read"),
    ("POST", "/api/v1/loyalty/tiers"): Route(
        "loyalty:manage",
        lambda w, _role: body(
            {
                "code": w.unique("walk-tier"),
                "name": "金卡 Gold",
                "threshold": _number(w, "threshold"),
                "multiplier": "1.5",
                "coupons": ["gold-welcome"],
                "free_shipping": True,
            }
        ),
        (
            Bad("code with capitals", lambda _w: body({"code": "Gold", "name": "g", "threshold": 1}), ("body", "code")),
            Bad(
                "negative threshold",
                lambda _w: body({"code": "g", "name": "g", "threshold": -1}),
                ("body", "threshold"),
            ),
            Bad(
                "multiplier 0",
                lambda _w: body({"code": "g", "name": "g", "threshold": 1, "multiplier": 0}),
                ("body", "multiplier"),
            ),
        ),
    ),
    ("PATCH", "/api/v1/loyalty/tiers/{code}"): Route(
        "loyalty:manage",
        lambda w, _role: Call(path={"code": _tier(w)}, body={"free_shipping": True}, has_body=True),
        (
            Bad("code with a star", lambda _w: Call(path={"code": "a*b"}, body={}, has_body=True), ("path", "code")),
            Bad(
                "coupons not a list",
                lambda w: Call(path={"code": _tier(w)}, body={"coupons": "x"}, has_body=True),
                ("body", "coupons"),
            ),
        ),
    ),
    ("DELETE", "/api/v1/loyalty/tiers/{code}"): Route(
        "loyalty:manage",
        lambda w, _role: Call(path={"code": _tier(w)}),
        (Bad("code with a star", lambda _w: Call(path={"code": "a*b"}), ("path", "code")),),
    ),
    ("GET", "/api/v1/loyalty/earning-rules"): Route("loyalty:read"),
    ("POST", "/api/v1/loyalty/earning-rules"): Route(
        "loyalty:manage",
        lambda w, _role: body(
            {"name": w.unique("walk-rule"), "kind": "multiplier", "scope": "brand", "match": "acme", "multiplier": 2}
        ),
        (
            Bad("unknown kind", lambda _w: body({"name": "r", "kind": "bonus"}), ("body", "kind")),
            Bad(
                "scope weather",
                lambda _w: body({"name": "r", "kind": "multiplier", "scope": "weather"}),
                ("body", "scope"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "category multiplier without match",
                lambda w: body({"name": w.unique("r"), "kind": "multiplier", "scope": "category", "multiplier": 2}),
                ("match",),
            ),
        ),
    ),
    ("PATCH", "/api/v1/loyalty/earning-rules/{rule_id}"): Route(
        "loyalty:manage",
        lambda w, _role: Call(path={"rule_id": _rule(w)}, body={"max_points": 500}, has_body=True),
        (
            Bad("id not a number", lambda _w: Call(path={"rule_id": "x"}, body={}, has_body=True), ("path", "rule_id")),
            Bad(
                "scope on a cap",
                lambda w: Call(path={"rule_id": _rule(w)}, body={"scope": "brand"}, has_body=True),
                ("scope",),
            ),
        ),
    ),
    ("DELETE", "/api/v1/loyalty/earning-rules/{rule_id}"): Route(
        "loyalty:manage",
        lambda w, _role: Call(path={"rule_id": _rule(w)}),
        (Bad("id 0", lambda _w: Call(path={"rule_id": 0}), ("path", "rule_id")),),
    ),
    ("GET", "/api/v1/loyalty/event-rules"): Route("loyalty:read"),
    ("PUT", "/api/v1/loyalty/event-rules/{event}"): Route(
        "loyalty:manage",
        lambda _w, _role: Call(path={"event": "review"}, body={"points": 5, "daily_limit": 3}, has_body=True),
        (
            Bad(
                "unknown event",
                lambda _w: Call(path={"event": "wedding"}, body={"points": 1}, has_body=True),
                ("path", "event"),
            ),
            Bad(
                "negative points",
                lambda _w: Call(path={"event": "review"}, body={"points": -1}, has_body=True),
                ("body", "points"),
            ),
            Bad(
                "streak on sign-up",
                lambda _w: Call(
                    path={"event": "sign_up"}, body={"points": 1, "streak_days": 7, "streak_bonus": 1}, has_body=True
                ),
                ("streak_days",),
            ),
        ),
    ),
    ("POST", ORDERS): Route(
        "loyalty:write",
        lambda w, _role: _keyed(_order(w), w.unique("walk-key")),
        (
            Bad("member key upper-case", lambda w: _keyed(_order(w, member_key="M0"), "k"), ("body", "member_key")),
            Bad("no lines", lambda w: _keyed(_order(w, lines=[]), "k"), ("body", "lines")),
            Bad(
                "negative amount",
                lambda w: _keyed(_order(w, lines=[{"sku": "x", "amount": "-1"}]), "k"),
                ("body", "lines", "0", "amount"),
            ),
            Bad("no idempotency key", lambda w: body(_order(w)), ("header", "Idempotency-Key")),
        ),
    ),
    ("POST", f"{ORDERS}/dry-run"): Route(
        "loyalty:read",
        lambda w, _role: body(_order(w)),
        (
            Bad("paid_at not a date", lambda w: body(_order(w, paid_at="soon")), ("body", "paid_at")),
            Bad(
                "quantity 0",
                lambda w: body(_order(w, lines=[{"sku": "x", "amount": 1, "quantity": 0}])),
                ("body", "lines", "0", "quantity"),
            ),
        ),
    ),
    ("GET", f"{ORDERS}/{{order_key}}"): Route(
        "loyalty:read",
        lambda w, _role: Call(path={"order_key": _recorded_order(w)}),
        (Bad("key too long", lambda _w: Call(path={"order_key": "x" * 129}), ("path", "order_key")),),
    ),
    ("POST", f"{ORDERS}/{{order_key}}/returns"): Route(
        "loyalty:write",
        lambda w, _role: Call(
            path={"order_key": _recorded_order(w)},
            params={"idempotency_key": w.unique("walk-key")},
            body={"lines": [{"line_id": "1", "quantity": 1}]},
            has_body=True,
        ),
        (
            Bad(
                "quantity 0",
                lambda w: Call(
                    path={"order_key": "o"},
                    params={"idempotency_key": "k"},
                    body={"lines": [{"line_id": "1", "quantity": 0}]},
                    has_body=True,
                ),
                ("body", "lines", "0", "quantity"),
            ),
            Bad(
                "no idempotency key",
                lambda w: Call(path={"order_key": _recorded_order(w)}, body={}, has_body=True),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("POST", "/api/v1/loyalty/events"): Route(
        "loyalty:write",
        lambda w, _role: _keyed(_event(w), w.unique("walk-key")),
        (
            Bad("unknown event", lambda w: _keyed(_event(w, event="wedding"), "k"), ("body", "event")),
            Bad("birthday not a date", lambda w: _keyed(_event(w, birthday="spring"), "k"), ("body", "birthday")),
            Bad("no idempotency key", lambda w: body(_event(w)), ("header", "Idempotency-Key")),
        ),
    ),
    ("GET", "/api/v1/loyalty/members/{member_key}/tier"): Route(
        "loyalty:read",
        lambda w, _role: Call(path={"member_key": w.member_key}),
        (Bad("short key", lambda _w: Call(path={"member_key": "m0123"}), ("path", "member_key")),),
    ),
    ("GET", "/api/v1/loyalty/jobs"): Route("loyalty:read"),
    ("GET", "/api/v1/loyalty/jobs/{name}/runs"): Route(
        "loyalty:read",
        lambda _w, _role: Call(path={"name": "points-expiry"}, params={"limit": 5}),
        (
            Bad("unknown job", lambda _w: Call(path={"name": "member-day"}), ("path", "name")),
            Bad("limit 0", lambda _w: Call(path={"name": "points-expiry"}, params={"limit": 0}), ("query", "limit")),
        ),
    ),
    ("PATCH", "/api/v1/loyalty/jobs/{name}"): Route(
        "loyalty:manage",
        lambda _w, _role: Call(path={"name": "points-expiry"}, body={"enabled": True}, has_body=True),
        (
            Bad("unknown job", lambda _w: Call(path={"name": "x"}, body={}, has_body=True), ("path", "name")),
            Bad(
                "bad spec",
                lambda _w: Call(path={"name": "points-expiry"}, body={"spec": "weekly"}, has_body=True),
                ("spec",),
            ),
        ),
    ),
    ("POST", "/api/v1/loyalty/jobs/{name}/run"): Route(
        "loyalty:manage",
        lambda _w, _role: Call(path={"name": "points-activation"}),
        (Bad("unknown job", lambda _w: Call(path={"name": "member-day"}), ("path", "name")),),
    ),
}
