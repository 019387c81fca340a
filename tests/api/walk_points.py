"""Authorization-walk entries of the loyalty points routes."""

from __future__ import annotations

from patron.loyalty.ledger_schemas import EarnRequest
from patron.loyalty.ledger_service import earn_points
from tests.api.walk_types import Bad, Call, Route, World

POINTS = "/api/v1/loyalty/members/{member_key}/points"
NO_KEY = ("header", "Idempotency-Key")


def _funded(w: World, points: int = 100) -> str:
    """A fresh member holding ``points`` available points."""
    member = w.unique("walk-points")
    earn_points(
        w.runtime.store, w.unique("walk-key"), member, EarnRequest(points=points, reference=w.unique("ref")), "w"
    )
    return member


def _earned_reference(w: World) -> str:
    reference = w.unique("walk-order")
    earn_points(w.runtime.store, w.unique("walk-key"), _funded(w, 1), EarnRequest(points=5, reference=reference), "w")
    return reference


def _write(w: World, member: str, payload: object) -> Call:
    return Call(
        path={"member_key": member}, params={"idempotency_key": w.unique("walk-key")}, body=payload, has_body=True
    )


def _unkeyed(member: str, payload: object) -> Call:
    return Call(path={"member_key": member}, body=payload, has_body=True)


BAD_MEMBER = Bad("member key with a space", lambda _w: Call(path={"member_key": "a b"}), ("path", "member_key"))

MATRIX: dict[tuple[str, str], Route] = {
    ("GET", POINTS): Route("loyalty:read", lambda w, _role: Call(path={"member_key": w.member_key}), (BAD_MEMBER,)),
    ("GET", POINTS + "/lots"): Route(
        "loyalty:read", lambda w, _role: Call(path={"member_key": w.member_key}), (BAD_MEMBER,)
    ),
    ("GET", POINTS + "/history"): Route(
        "loyalty:read",
        lambda w, _role: Call(path={"member_key": w.member_key}, params={"page_size": 5}),
        (
            BAD_MEMBER,
            Bad("page 0", lambda w: Call(path={"member_key": w.member_key}, params={"page": 0}), ("query", "page")),
        ),
    ),
    ("POST", POINTS + "/earn"): Route(
        "loyalty:write",
        lambda w, _role: _write(w, w.unique("walk-points"), {"points": 10, "reference": w.unique("walk-order")}),
        (
            Bad("no idempotency key", lambda w: _unkeyed("m1", {"points": 1, "reference": w.unique("r")}), NO_KEY),
            Bad("zero points", lambda w: _write(w, "m1", {"points": 0, "reference": "r"}), ("body", "points")),
            Bad("no reference", lambda w: _write(w, "m1", {"points": 1}), ("body", "reference")),
        ),
    ),
    ("POST", POINTS + "/redeem"): Route(
        "loyalty:write",
        lambda w, _role: _write(w, _funded(w), {"points": 30, "reference": w.unique("walk-basket")}),
        (
            Bad("no idempotency key", lambda w: _unkeyed("m1", {"points": 1, "reference": w.unique("r")}), NO_KEY),
            Bad("negative points", lambda w: _write(w, "m1", {"points": -5, "reference": "r"}), ("body", "points")),
        ),
    ),
    ("POST", POINTS + "/adjust"): Route(
        "loyalty:adjust",
        lambda w, _role: _write(w, w.unique("walk-points"), {"points": 7, "reason": "goodwill gesture"}),
        (
            Bad("no idempotency key", lambda _w: _unkeyed("m1", {"points": 1, "reason": "goodwill"}), NO_KEY),
            Bad("no reason", lambda w: _write(w, "m1", {"points": 1}), ("body", "reason")),
        ),
    ),
    ("POST", "/api/v1/loyalty/points/reverse"): Route(
        "loyalty:write",
        lambda w, _role: Call(
            params={"idempotency_key": w.unique("walk-key")},
            body={"reference": _earned_reference(w), "reason": "returned"},
            has_body=True,
        ),
        (
            Bad("no idempotency key", lambda _w: Call(body={"reference": "r", "reason": "why"}, has_body=True), NO_KEY),
            Bad(
                "no reason",
                lambda w: Call(params={"idempotency_key": w.unique("k")}, body={"reference": "r"}, has_body=True),
                ("body", "reason"),
            ),
        ),
    ),
    ("POST", "/api/v1/loyalty/jobs/expire-points"): Route(
        "loyalty:manage",
        lambda _w, _role: Call(),
        (Bad("as_of not a time", lambda _w: Call(params={"as_of": "soon"}), ("query", "as_of")),),
    ),
    ("POST", "/api/v1/loyalty/jobs/activate-points"): Route(
        "loyalty:manage",
        lambda _w, _role: Call(),
        (Bad("as_of not a time", lambda _w: Call(params={"as_of": "soon"}), ("query", "as_of")),),
    ),
}
