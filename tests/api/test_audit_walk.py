"""Every write through the API leaves an audit entry: the authorization walk's routes, called once more.

A few routes take a body but change nothing an operator owns; each is listed with the reason it is not
audited, and the list must name real write routes only.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.audit.models import AuditEntry
from patron.runtime import Runtime
from tests.api.conftest import new_client
from tests.api.test_route_walk import MATRIX, SCHEMA_ROUTES, _route_id, _send, world
from tests.api.walk_types import PUBLIC, World

__all__ = ["world"]

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
WRITES = [route for route in SCHEMA_ROUTES if route[0] in WRITE_METHODS]

# Writes that are not audited, and why.
NOT_AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/recs/sessions"): "a read: recommendations for the items in the body",
    ("POST", "/api/v1/tags/validate"): "a read: checks a rule's syntax",
    ("POST", "/api/v1/carts/price"): "a read: prices a cart, changes nothing",
    ("POST", "/api/v1/loyalty/orders/dry-run"): "a read: explains what an order would earn",
    ("POST", "/api/v1/recs/feedback"): "shop telemetry (clicks, carts) stored with its own time and source",
    ("POST", "/api/v1/recs/events"): "shop telemetry (impressions, clicks) stored with its own time and source",
}


def _latest(runtime: Runtime) -> int:
    with runtime.store.session() as sess:
        return int(sess.scalar(select(func.coalesce(func.max(AuditEntry.seq), 0))) or 0)


def test_the_exemptions_name_write_routes_of_the_schema() -> None:
    stale = sorted(_route_id(route) for route in NOT_AUDITED if route not in WRITES)
    assert stale == []


@pytest.mark.parametrize("route", [r for r in WRITES if r not in NOT_AUDITED], ids=_route_id)
def test_every_write_appends_an_audit_entry(
    route: tuple[str, str], world: World, clients: dict[str, TestClient], api_app: FastAPI
) -> None:
    entry = MATRIX[route]
    if entry.ends_session or entry.own_operator or entry.expect is not None:
        pytest.skip("ends the caller's session or is refused by design; audited in its own tests")
    call = entry.sample(world, "admin")
    before = _latest(world.runtime)

    if entry.permission == PUBLIC:
        with new_client(api_app) as anonymous:
            response = _send(anonymous, route, call)
    else:
        response = _send(clients["admin"], route, call)

    assert 200 <= response.status_code < 300, response.text
    assert _latest(world.runtime) > before, f"{_route_id(route)} wrote without an audit entry"
