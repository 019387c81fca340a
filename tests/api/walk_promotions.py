"""Authorization-walk entries of the promotion, coupon, cart, order and reward routes.

Every sample makes what it needs (a template, a coupon, a reward, points) with
names of its own, so that each role's request succeeds however often it runs.
Coupon and reward writes need an ``Idempotency-Key`` header; a fresh key per
sample is sent when ``Call`` carries headers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from patron.loyalty import ledger
from patron.promotions.coupons import issue_coupon, reserve_coupon
from patron.promotions.rewards import create_reward
from patron.promotions.schemas import RewardCreate, TemplateCreate
from patron.promotions.templates import create_template
from tests.api.walk_types import Bad, Call, Route, World, body

_CALL_HEADERS = "headers" in getattr(Call, "__dataclass_fields__", {})
V1 = "/api/v1"


def _call(*, path: dict[str, object] | None = None, payload: Any = None, key: str | None = None) -> Call:
    fields: dict[str, Any] = {"path": path or {}, "body": payload, "has_body": payload is not None}
    if key is not None and _CALL_HEADERS:
        fields["headers"] = {"Idempotency-Key": key}
    return Call(**fields)


def _template(w: World) -> str:
    code = w.unique("WALK")
    data = TemplateCreate(code=code, name="walk", kind="fixed", params={"amount": "5"})
    with w.runtime.store.session() as session:
        create_template(session, data, "walk")
    return code


def _coupon(w: World, order: str | None = None) -> str:
    template = _template(w)
    with w.runtime.store.session() as session:
        code = issue_coupon(session, template, w.member_key, "walk").code
        if order is not None:
            reserve_coupon(session, code, order_reference=order, discount=Decimal("5"))
    return code


def _reward(w: World) -> int:
    data = RewardCreate(name=w.unique("walk-reward"), kind="gift", points_cost=1)
    with w.runtime.store.session() as session:
        return create_reward(session, data, "walk").id


def _funded_reward(w: World) -> int:
    with w.runtime.store.session() as session:
        ledger.earn(
            session,
            member_key=w.member_key,
            points=1,
            source="walk",
            reference=w.unique("walk-points"),
            expires_at=None,
            pending_until=None,
            actor="walk",
        )
    return _reward(w)


def _held(w: World, action: str) -> Call:
    order = w.unique("walk-order")
    return _call(path={"code": _coupon(w, order)}, payload={"order_reference": order}, key=w.unique(action))


_CART = {"lines": [{"line_id": "1", "product": "85123A", "unit_price": "2.55", "quantity": 12}], "shipping_fee": "4.95"}


def _checkout(w: World) -> Call:
    order = w.unique("walk-order")
    payload = {**_CART, "order_reference": order, "member_key": w.member_key, "coupons": [_coupon(w)]}
    return _call(payload=payload, key=w.unique("checkout"))


def _order(w: World, action: str) -> Call:
    """An order holding a coupon, paid or cancelled as a whole."""
    order = w.unique("walk-order")
    _coupon(w, order)
    return _call(payload={"order_reference": order}, key=w.unique(action))


MATRIX: dict[tuple[str, str], Route] = {
    ("GET", f"{V1}/promotions/templates"): Route("loyalty:read"),
    ("POST", f"{V1}/promotions/templates"): Route(
        "loyalty:manage",
        lambda w, _role: body(
            {"code": w.unique("WALK"), "name": "walk", "kind": "percent", "params": {"percent": "10", "cap": "5"}}
        ),
        (
            Bad("unknown kind", lambda w: body({"code": w.unique("W"), "name": "w", "kind": "bogo"}), ("body", "kind")),
            Bad(
                "percent over 100",
                lambda w: body({"code": w.unique("W"), "name": "w", "kind": "percent", "params": {"percent": 101}}),
                ("body", "params"),
            ),
            Bad("code with a space", lambda _w: body({"code": "a b", "name": "w", "kind": "gift"}), ("body", "code")),
            Bad(
                "three decimal places",
                lambda w: body({"code": w.unique("W"), "name": "w", "kind": "free_shipping", "min_spend": "1.005"}),
                ("body", "min_spend"),
            ),
        ),
    ),
    ("PATCH", f"{V1}/promotions/templates/{{code}}"): Route(
        "loyalty:manage",
        lambda w, _role: _call(path={"code": _template(w)}, payload={"priority": 5, "status": "paused"}),
        (
            Bad("code with a star", lambda _w: _call(path={"code": "a*b"}, payload={}), ("path", "code")),
            Bad(
                "unknown status",
                lambda w: _call(path={"code": _template(w)}, payload={"status": "gone"}),
                ("body", "status"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "negative amount",
                lambda w: _call(path={"code": _template(w)}, payload={"params": {"amount": "-1"}}),
                ("params", "amount"),
            ),
        ),
    ),
    ("POST", f"{V1}/promotions/templates/{{code}}/codes"): Route(
        "loyalty:manage",
        lambda w, _role: _call(path={"code": _template(w)}, payload={"count": 3, "prefix": "WK"}),
        (
            Bad("count 0", lambda w: _call(path={"code": _template(w)}, payload={"count": 0}), ("body", "count")),
            Bad(
                "lower-case prefix",
                lambda w: _call(path={"code": _template(w)}, payload={"count": 1, "prefix": "ab"}),
                ("body", "prefix"),
            ),
        ),
    ),
    ("GET", f"{V1}/promotions/stats"): Route("loyalty:read"),
    ("POST", f"{V1}/coupons/issue"): Route(
        "loyalty:write",
        lambda w, _role: body({"template_code": _template(w), "member_key": w.member_key, "reason": "walk"}),
        (
            Bad(
                "upper-case member key",
                lambda w: body({"template_code": "X", "member_key": w.member_key.upper()}),
                ("body", "member_key"),
            ),
            Bad("template missing", lambda w: body({"member_key": w.member_key}), ("body", "template_code")),
        ),
    ),
    ("POST", f"{V1}/coupons/{{code}}/reserve"): Route(
        "loyalty:write",
        lambda w, _role: _call(
            path={"code": _coupon(w)},
            payload={"order_reference": w.unique("walk-order"), "discount": "5.00"},
            key=w.unique("reserve"),
        ),
        (
            Bad(
                "negative discount",
                lambda w: _call(
                    path={"code": "ABC"}, payload={"order_reference": "o", "discount": "-1"}, key=w.unique("k")
                ),
                ("body", "discount"),
            ),
            Bad(
                "no idempotency key",
                lambda _w: _call(path={"code": "ABC"}, payload={"order_reference": "o", "discount": "1"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("POST", f"{V1}/coupons/{{code}}/redeem"): Route(
        "loyalty:write",
        lambda w, _role: _held(w, "redeem"),
        (
            Bad(
                "order missing",
                lambda w: _call(path={"code": "ABC"}, payload={}, key=w.unique("k")),
                ("body", "order_reference"),
            ),
            Bad(
                "no idempotency key",
                lambda _w: _call(path={"code": "ABC"}, payload={"order_reference": "o"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("POST", f"{V1}/coupons/{{code}}/release"): Route(
        "loyalty:write",
        lambda w, _role: _held(w, "release"),
        (
            Bad(
                "code with a star",
                lambda w: _call(path={"code": "a*b"}, payload={"order_reference": "o"}, key=w.unique("k")),
                ("path", "code"),
            ),
            Bad(
                "no idempotency key",
                lambda _w: _call(path={"code": "ABC"}, payload={"order_reference": "o"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("GET", f"{V1}/members/{{member_key}}/coupons"): Route(
        "loyalty:read",
        lambda w, _role: Call(path={"member_key": w.member_key}),
        (Bad("short key", lambda _w: Call(path={"member_key": "m0123"}), ("path", "member_key")),),
    ),
    ("POST", f"{V1}/carts/price"): Route(
        "loyalty:read",
        lambda w, _role: body({**_CART, "member_key": w.member_key, "coupons": [_coupon(w)]}),
        (
            Bad("no lines", lambda _w: body({"lines": []}), ("body", "lines")),
            Bad(
                "quantity 0",
                lambda _w: body({"lines": [{"line_id": "1", "product": "p", "unit_price": "1", "quantity": 0}]}),
                ("body", "lines", "0", "quantity"),
            ),
            Bad(
                "price not a number",
                lambda _w: body({"lines": [{"line_id": "1", "product": "p", "unit_price": "cheap", "quantity": 1}]}),
                ("body", "lines", "0", "unit_price"),
            ),
        ),
    ),
    ("POST", f"{V1}/carts/checkout"): Route(
        "loyalty:write",
        lambda w, _role: _checkout(w),
        (
            Bad("order missing", lambda w: _call(payload=_CART, key=w.unique("k")), ("body", "order_reference")),
            Bad(
                "no lines",
                lambda w: _call(payload={"order_reference": "o", "lines": []}, key=w.unique("k")),
                ("body", "lines"),
            ),
            Bad(
                "no idempotency key",
                lambda _w: _call(payload={**_CART, "order_reference": "o"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("GET", f"{V1}/orders/promotions"): Route(
        "loyalty:read",
        lambda w, _role: Call(params={"order_reference": w.unique("walk-order")}),
        (Bad("order missing", lambda _w: Call(), ("query", "order_reference")),),
    ),
    ("POST", f"{V1}/orders/promotions/redeem"): Route(
        "loyalty:write",
        lambda w, _role: _order(w, "pay"),
        (
            Bad("order missing", lambda w: _call(payload={}, key=w.unique("k")), ("body", "order_reference")),
            Bad(
                "no idempotency key",
                lambda _w: _call(payload={"order_reference": "o"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("POST", f"{V1}/orders/promotions/release"): Route(
        "loyalty:write",
        lambda w, _role: _order(w, "cancel"),
        (
            Bad(
                "order too long",
                lambda w: _call(payload={"order_reference": "o" * 129}, key=w.unique("k")),
                ("body", "order_reference"),
            ),
            Bad(
                "no idempotency key",
                lambda _w: _call(payload={"order_reference": "o"}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
    ("GET", f"{V1}/rewards"): Route("loyalty:read"),
    ("POST", f"{V1}/rewards"): Route(
        "loyalty:manage",
        lambda w, _role: body({"name": w.unique("walk-reward"), "kind": "gift", "points_cost": 10, "stock": 5}),
        (
            Bad(
                "cost 0",
                lambda w: body({"name": w.unique("r"), "kind": "gift", "points_cost": 0}),
                ("body", "points_cost"),
            ),
            Bad(
                "unknown kind",
                lambda w: body({"name": w.unique("r"), "kind": "cash", "points_cost": 1}),
                ("body", "kind"),
            ),
        ),
    ),
    ("PATCH", f"{V1}/rewards/{{reward_id}}"): Route(
        "loyalty:manage",
        lambda w, _role: _call(path={"reward_id": _reward(w)}, payload={"stock": 9, "active": True}),
        (
            Bad("id not a number", lambda _w: _call(path={"reward_id": "first"}, payload={}), ("path", "reward_id")),
            Bad(
                "negative stock",
                lambda w: _call(path={"reward_id": _reward(w)}, payload={"stock": -1}),
                ("body", "stock"),
            ),
        ),
    ),
    ("POST", f"{V1}/rewards/{{reward_id}}/exchange"): Route(
        "loyalty:write",
        lambda w, _role: _call(
            path={"reward_id": _funded_reward(w)}, payload={"member_key": w.member_key}, key=w.unique("exchange")
        ),
        (
            Bad(
                "member key missing",
                lambda w: _call(path={"reward_id": 1}, payload={}, key=w.unique("k")),
                ("body", "member_key"),
            ),
            Bad(
                "no idempotency key",
                lambda w: _call(path={"reward_id": 1}, payload={"member_key": w.member_key}),
                ("header", "Idempotency-Key"),
            ),
        ),
    ),
}
