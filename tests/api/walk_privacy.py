"""Authorization-walk entries of the privacy routes (data-subject requests)."""

from __future__ import annotations

import polars as pl

from patron.members.identity import resolve_member_keys
from patron.privacy.schemas import PrivacyRequestCreate
from patron.privacy.service import create_request, execute
from tests.api.walk_types import Bad, Call, Route, World, body

REQUESTS = "/api/v1/privacy/requests"
ONE = REQUESTS + "/{request_id}"


def _request(w: World, kind: str = "export", member_key: str | None = None) -> int:
    """A fresh open request, so that every start, execution or rejection has one of its own."""
    data = PrivacyRequestCreate.model_validate({"kind": kind, "member_key": member_key or w.member_key, "note": "walk"})
    return create_request(w.runtime.store, data, "walk").id


def _restricted_member(w: World) -> str:
    """A fresh member whose processing a request has restricted."""
    source_id = w.unique("walk-restricted")
    member = str(resolve_member_keys(w.runtime.store, "walk", pl.Series([source_id]))["member_key"][0])
    execute(w.runtime, _request(w, "restriction", member), "walk")
    return member


def _on(request_id: int, payload: object | None = None) -> Call:
    if payload is None:
        return Call(path={"request_id": request_id})
    return Call(path={"request_id": request_id}, body=payload, has_body=True)


BAD_ID = Bad("request id not a number", lambda _w: Call(path={"request_id": "first"}), ("path", "request_id"))
ZERO_ID = Bad("request id 0", lambda _w: Call(path={"request_id": 0}), ("path", "request_id"))

MATRIX: dict[tuple[str, str], Route] = {
    ("POST", REQUESTS): Route(
        "privacy:manage",
        lambda w, _role: body({"kind": "export", "member_key": w.member_key, "note": "asked by letter"}),
        (
            Bad("unknown kind", lambda w: body({"kind": "forget", "member_key": w.member_key}), ("body", "kind")),
            Bad("bad member key", lambda _w: body({"kind": "export", "member_key": "M1"}), ("body", "member_key")),
            Bad("member key missing", lambda _w: body({"kind": "export"}), ("body", "member_key")),
            Bad(
                "received_at not a time",
                lambda w: body({"kind": "export", "member_key": w.member_key, "received_at": "soon"}),
                ("body", "received_at"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "an e-mail address in the note",
                lambda w: body({"kind": "export", "member_key": w.member_key, "note": "from a.b@example.com"}),
                ("note",),
            ),
        ),
    ),
    ("GET", REQUESTS): Route(
        "privacy:manage",
        lambda w, _role: Call(params={"due": "open", "kind": "export", "member_key": w.member_key, "page_size": 5}),
        (
            Bad("due later", lambda _w: Call(params={"due": "later"}), ("query", "due")),
            Bad("unknown status", lambda _w: Call(params={"status": "lost"}), ("query", "status")),
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("bad member key", lambda _w: Call(params={"member_key": "m1"}), ("query", "member_key")),
        ),
    ),
    ("GET", ONE): Route("privacy:manage", lambda w, _role: _on(_request(w)), (BAD_ID, ZERO_ID)),
    ("POST", ONE + "/start"): Route("privacy:manage", lambda w, _role: _on(_request(w)), (BAD_ID, ZERO_ID)),
    ("POST", ONE + "/execute"): Route(
        "privacy:manage",
        lambda w, _role: _on(_request(w)),
        (
            BAD_ID,
            Bad(
                "correction with a bad e-mail",
                lambda w: _on(_request(w, "correction"), {"correction": {"email": "not-an-address"}}),
                ("body", "correction", "email"),
            ),
            Bad(
                "correction of an unknown field",
                lambda w: _on(_request(w, "correction"), {"correction": {"nickname": "x"}}),
                ("body", "correction", "nickname"),
            ),
            # rejected by the service, which names the field without its location
            Bad("correction without values", lambda w: _on(_request(w, "correction"), {}), ("correction",)),
        ),
    ),
    ("POST", ONE + "/reject"): Route(
        "privacy:manage",
        lambda w, _role: _on(_request(w), {"reason": "identity could not be verified"}),
        (
            BAD_ID,
            Bad("reason missing", lambda w: _on(_request(w), {}), ("body", "reason")),
            Bad("reason too short", lambda w: _on(_request(w), {"reason": "no"}), ("body", "reason")),
        ),
    ),
    ("DELETE", "/api/v1/privacy/restrictions/{member_key}"): Route(
        "privacy:manage",
        lambda w, _role: Call(path={"member_key": _restricted_member(w)}),
        (Bad("member key with a space", lambda _w: Call(path={"member_key": "a b"}), ("path", "member_key")),),
    ),
}
