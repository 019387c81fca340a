"""Route-walk entries of the second factor and of ending sessions."""

from __future__ import annotations

from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from tests.api.walk_types import SIGNED_IN, Bad, Call, Route, World, body

MATRIX: dict[tuple[str, str], Route] = {
    ("POST", "/api/v1/auth/mfa/setup"): Route(SIGNED_IN),
    # A code that cannot match: a permitted caller gets 422 naming the code (enrolment is tested on its own).
    ("POST", "/api/v1/auth/mfa/confirm"): Route(
        SIGNED_IN,
        lambda _w, _role: body({"code": "000000"}),
        (Bad("code not six digits", lambda _w: body({"code": "12ab"}), ("body", "code")),),
        expect=422,
    ),
    ("POST", "/api/v1/auth/sessions/revoke-all"): Route(SIGNED_IN, ends_session=True, own_operator=True),
}


def _fresh_operator(w: World) -> int:
    """An operator of its own for each call, so that ending its sessions touches nobody else."""
    data = OperatorCreate(username=w.unique("walk-op"), password="walk-operator-pass-1", role="analyst")
    return create_operator(w.runtime.store, data).id


MATRIX |= {
    ("POST", "/api/v1/operators/{operator_id}/sessions/revoke"): Route(
        "operators:manage",
        lambda w, _role: Call(path={"operator_id": _fresh_operator(w)}),
        (Bad("operator id 0", lambda _w: Call(path={"operator_id": 0}), ("path", "operator_id")),),
    ),
    ("POST", "/api/v1/operators/{operator_id}/mfa/reset"): Route(
        "operators:manage",
        lambda w, _role: Call(path={"operator_id": _fresh_operator(w)}),
        (Bad("operator id 0", lambda _w: Call(path={"operator_id": 0}), ("path", "operator_id")),),
    ),
}
