"""Authorization-walk entries of the consent routes."""

from __future__ import annotations

from tests.api.walk_types import Bad, Call, Route, World

CONSENTS = "/api/v1/members/{member_key}/consents"
BAD_MEMBER = Bad("member key with a space", lambda _w: Call(path={"member_key": "a b"}), ("path", "member_key"))


def _put(w: World, purpose: str, payload: object) -> Call:
    return Call(path={"member_key": w.member_key, "purpose": purpose}, body=payload, has_body=True)


MATRIX: dict[tuple[str, str], Route] = {
    ("GET", CONSENTS): Route("consent:read", lambda w, _role: Call(path={"member_key": w.member_key}), (BAD_MEMBER,)),
    ("GET", CONSENTS + "/history"): Route(
        "consent:read",
        lambda w, _role: Call(path={"member_key": w.member_key}, params={"purpose": "marketing_sms", "page_size": 5}),
        (
            BAD_MEMBER,
            Bad("page 0", lambda w: Call(path={"member_key": w.member_key}, params={"page": 0}), ("query", "page")),
            Bad(
                "unknown purpose",
                lambda w: Call(path={"member_key": w.member_key}, params={"purpose": "telepathy"}),
                ("query", "purpose"),
            ),
        ),
    ),
    # marketing_sms: the walk's statements must not change what the recommendation tests serve this member
    ("PUT", CONSENTS + "/{purpose}"): Route(
        "consent:write",
        lambda w, _role: _put(w, "marketing_sms", {"state": "denied", "evidence": w.unique("walk-form")}),
        (
            Bad("unknown purpose", lambda w: _put(w, "telepathy", {"state": "granted"}), ("path", "purpose")),
            Bad("unknown state", lambda w: _put(w, "marketing_sms", {"state": "maybe"}), ("body", "state")),
            Bad(
                "console source through the API",
                lambda w: _put(w, "marketing_sms", {"state": "granted", "source": "console"}),
                ("body", "source"),
            ),
            Bad(
                "evidence too long",
                lambda w: _put(w, "marketing_sms", {"state": "granted", "evidence": "x" * 513}),
                ("body", "evidence"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "an e-mail address as evidence",
                lambda w: _put(w, "marketing_sms", {"state": "granted", "evidence": "asked a.b@example.com"}),
                ("evidence",),
            ),
        ),
    ),
}
