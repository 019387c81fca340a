"""The authorization matrix, walked over every route that /openapi.json lists.

Each route has an entry in ``MATRIX``: the permission it needs, a valid sample
request and bad inputs with the field their 422 must name. The routes are
enumerated from the app's OpenAPI schema, so a route added without an entry
fails here. Who holds which permission is restated in ``GRANTS`` (the table of
patron.auth.rules) rather than read from the code under test.
"""

from __future__ import annotations

import importlib
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.auth import rules
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.ingest.service import list_imports
from patron.runtime import Runtime
from tests.api.conftest import (
    CLIENT_IP,
    PASSWORD,
    ROLES,
    assert_problem,
    member_key_of,
    new_client,
    sign_in,
)
from tests.api.walk_types import HTTP_METHODS, PUBLIC, SIGNED_IN, Bad, Call, Route, World, body
from tests.conftest import make_settings

GRANTS: dict[str, frozenset[str]] = {
    "members:read": frozenset({"admin", "analyst", "marketer", "support"}),
    "members:personal": frozenset({"admin", "support"}),
    "segments:read": frozenset({"admin", "analyst", "marketer", "support"}),
    "kpis:read": frozenset({"admin", "analyst", "marketer", "support"}),
    "imports:read": frozenset({"admin", "analyst"}),
    "builds:read": frozenset({"admin", "analyst"}),
    "operators:manage": frozenset({"admin"}),
    "api_keys:manage": frozenset({"admin"}),
    "audit:read": frozenset({"admin"}),
    "alerts:read": frozenset({"admin", "analyst", "marketer"}),
    "alerts:manage": frozenset({"admin", "analyst"}),
    "forecasts:read": frozenset({"admin", "analyst", "marketer"}),
    "tags:manage": frozenset({"admin", "analyst", "marketer"}),
    "recs:read": frozenset({"admin", "analyst", "marketer", "support"}),
    "recs:manage": frozenset({"admin", "analyst"}),
    "recs:track": frozenset({"admin", "analyst", "marketer"}),
    "loyalty:read": frozenset({"admin", "analyst", "marketer", "support"}),
    "loyalty:write": frozenset({"admin", "marketer", "support"}),
    "loyalty:adjust": frozenset({"admin", "support"}),
    "loyalty:manage": frozenset({"admin", "marketer"}),
    "consent:read": frozenset({"admin", "marketer", "support"}),
    "consent:write": frozenset({"admin", "support"}),
    "privacy:manage": frozenset({"admin", "support"}),
    "retention:manage": frozenset({"admin"}),
}


def _login(w: World, role: str) -> Call:
    return body({"username": w.operators[role], "password": PASSWORD})


def _new_operator(w: World, _role: str) -> Call:
    return body({"username": w.unique("walk-op"), "password": PASSWORD, "role": "marketer"})


def _rule_body(w: World, **fields: object) -> Call:
    return body({"name": w.unique("walk-rule"), "metric": "gmv", "kind": "threshold", "op": "<", "value": 1, **fields})


CORE_MATRIX: dict[tuple[str, str], Route] = {
    ("GET", "/health"): Route(PUBLIC),
    ("POST", "/api/v1/auth/login"): Route(
        PUBLIC,
        _login,
        (
            Bad(
                "username not a string", lambda _w: body({"username": ["admin"], "password": "x"}), ("body", "username")
            ),
            Bad("password missing", lambda _w: body({"username": "admin"}), ("body", "password")),
        ),
    ),
    ("POST", "/api/v1/auth/logout"): Route(SIGNED_IN, ends_session=True),
    ("GET", "/api/v1/auth/me"): Route(SIGNED_IN),
    ("GET", "/api/v1/members"): Route(
        "members:read",
        lambda _w, _role: Call(
            params={
                "q": "12346",
                "segment": "hibernating",
                "page": 1,
                "page_size": 5,
                "sort": "frequency",
                "order": "asc",
            }
        ),
        (
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("page_size 100000", lambda _w: Call(params={"page_size": 100_000}), ("query", "page_size")),
            Bad("unknown segment", lambda _w: Call(params={"segment": "vip"}), ("query", "segment")),
            Bad("unknown sort", lambda _w: Call(params={"sort": "email"}), ("query", "sort")),
            Bad("unknown order", lambda _w: Call(params={"order": "sideways"}), ("query", "order")),
            Bad("query too long", lambda _w: Call(params={"q": "x" * 201}), ("query", "q")),
            Bad("tag too long", lambda _w: Call(params={"tag": "x" * 65}), ("query", "tag")),
        ),
    ),
    ("GET", "/api/v1/members/{member_key}"): Route(
        "members:read",
        lambda w, _role: Call(path={"member_key": w.member_key}),
        (
            Bad("upper-case key", lambda w: Call(path={"member_key": w.member_key.upper()}), ("path", "member_key")),
            Bad("short key", lambda _w: Call(path={"member_key": "m0123"}), ("path", "member_key")),
            Bad(
                "reason too short",
                lambda w: Call(path={"member_key": w.member_key}, params={"reason": "why"}),
                ("query", "reason"),
            ),
            Bad(
                "reason too long",
                lambda w: Call(path={"member_key": w.member_key}, params={"reason": "x" * 301}),
                ("query", "reason"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "reason with an e-mail",
                lambda w: Call(path={"member_key": w.member_key}, params={"reason": "customer a.b@example.com"}),
                ("reason",),
            ),
        ),
    ),
    ("GET", "/api/v1/segments"): Route("segments:read"),
    ("GET", "/api/v1/tags"): Route("segments:read"),
    ("POST", "/api/v1/tags"): Route(
        "tags:manage",
        lambda w, _role: body({"name": w.unique("walk-tag"), "rule": "frequency > 2 and segment != 'champions'"}),
        (
            Bad("name with a star", lambda _w: body({"name": "a*b", "rule": "frequency > 2"}), ("body", "name")),
            Bad("rule missing", lambda w: body({"name": w.unique("walk-tag")}), ("body", "rule")),
            # rejected by the rule parser, which names the field without its location
            Bad("rule unreadable", lambda w: body({"name": w.unique("walk-tag"), "rule": "frequency >"}), ("rule",)),
        ),
    ),
    ("POST", "/api/v1/tags/validate"): Route(
        "tags:manage",
        lambda _w, _role: body({"rule": "days_since(last_order_at) > 90"}),
        (Bad("rule empty", lambda _w: body({"rule": ""}), ("body", "rule")),),
    ),
    ("GET", "/api/v1/tags/{name}"): Route(
        "segments:read",
        lambda w, _role: Call(path={"name": w.tag()}),
        (Bad("name with a star", lambda _w: Call(path={"name": "a*b"}), ("path", "name")),),
    ),
    ("PATCH", "/api/v1/tags/{name}"): Route(
        "tags:manage",
        lambda w, _role: Call(path={"name": w.tag()}, body={"description": "walked"}, has_body=True),
        (
            Bad(
                "rule empty",
                lambda w: Call(path={"name": w.tag()}, body={"rule": ""}, has_body=True),
                ("body", "rule"),
            ),
        ),
    ),
    ("DELETE", "/api/v1/tags/{name}"): Route(
        "tags:manage",
        lambda w, _role: Call(path={"name": w.tag()}),
        (Bad("name with a star", lambda _w: Call(path={"name": "a*b"}), ("path", "name")),),
    ),
    ("GET", "/api/v1/kpis"): Route(
        "kpis:read",
        lambda _w, _role: Call(params={"start": "2011-11-01", "end": "2011-12-01", "granularity": "week"}),
        (
            Bad(
                "granularity fortnight", lambda _w: Call(params={"granularity": "fortnight"}), ("query", "granularity")
            ),
            Bad("month 13", lambda _w: Call(params={"start": "2011-13-01"}), ("query", "start")),
            Bad("not a date", lambda _w: Call(params={"end": "yesterday"}), ("query", "end")),
            # rejected by the service, which names the field without its location
            Bad("start after end", lambda _w: Call(params={"start": "2011-12-01", "end": "2011-11-01"}), ("start",)),
        ),
    ),
    ("GET", "/api/v1/cohorts"): Route(
        "kpis:read",
        lambda _w, _role: Call(params={"period": "month", "metric": "revenue", "start": "2011-01-01"}),
        (
            Bad("period day", lambda _w: Call(params={"period": "day"}), ("query", "period")),
            Bad("metric profit", lambda _w: Call(params={"metric": "profit"}), ("query", "metric")),
            Bad("not a date", lambda _w: Call(params={"start": "soon"}), ("query", "start")),
            Bad("start after end", lambda _w: Call(params={"start": "2011-12-01", "end": "2011-11-01"}), ("start",)),
        ),
    ),
    ("GET", "/api/v1/repurchase-intervals"): Route("kpis:read"),
    ("GET", "/api/v1/funnels"): Route(
        "kpis:read",
        lambda _w, _role: Call(
            params={
                "steps": "view:category=Books,cart,purchase",
                "window_hours": 48,
                "order": "any",
                "exclude": "remove",
                "breakdown": "segment",
                "start": "2011-01-01",
                "end": "2011-12-01",
            }
        ),
        (
            Bad("steps missing", lambda _w: Call(params={"window_hours": 24}), ("query", "steps")),
            Bad("step with a space", lambda _w: Call(params={"steps": "view,add to cart"}), ("query", "steps")),
            Bad("unknown step filter", lambda _w: Call(params={"steps": "view:colour=red"}), ("query", "steps")),
            Bad(
                "exclusion without a value",
                lambda _w: Call(params={"steps": "view", "exclude": "fav:category="}),
                ("query", "exclude"),
            ),
            Bad("window 0", lambda _w: Call(params={"steps": "view", "window_hours": 0}), ("query", "window_hours")),
            Bad("order sideways", lambda _w: Call(params={"steps": "view", "order": "sideways"}), ("query", "order")),
            Bad(
                "breakdown gender",
                lambda _w: Call(params={"steps": "view", "breakdown": "gender"}),
                ("query", "breakdown"),
            ),
            Bad("not a date", lambda _w: Call(params={"steps": "view", "start": "soon"}), ("query", "start")),
            Bad(
                "start after end",
                lambda _w: Call(params={"steps": "view", "start": "2011-12-01", "end": "2011-11-01"}),
                ("start",),
            ),
        ),
    ),
    ("GET", "/api/v1/churn"): Route("segments:read"),
    ("GET", "/api/v1/forecasts"): Route(
        "forecasts:read",
        lambda _w, _role: Call(params={"level": "category", "page": 1, "page_size": 5}),
        (
            Bad("level brand", lambda _w: Call(params={"level": "brand"}), ("query", "level")),
            Bad("empty key", lambda _w: Call(params={"key": ""}), ("query", "key")),
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("page_size 100000", lambda _w: Call(params={"page_size": 100_000}), ("query", "page_size")),
        ),
    ),
    ("GET", "/api/v1/forecasts/backtest"): Route("forecasts:read"),
    ("GET", "/api/v1/stock-warnings"): Route(
        "forecasts:read",
        lambda _w, _role: Call(params={"page": 1, "page_size": 5}),
        (
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("page_size 100000", lambda _w: Call(params={"page_size": 100_000}), ("query", "page_size")),
        ),
    ),
    ("GET", "/api/v1/alert-rules"): Route("alerts:read"),
    ("POST", "/api/v1/alert-rules"): Route(
        "alerts:manage",
        lambda w, _role: _rule_body(w, webhook_url="https://hooks.example.com/patron"),
        (
            Bad("unknown metric", lambda w: _rule_body(w, metric="profit"), ("body", "metric")),
            Bad("bad operator", lambda w: _rule_body(w, op="=="), ("body", "op")),
            Bad("threshold without a value", lambda w: _rule_body(w, value=None), ("body", "value")),
            Bad(
                "anomaly over 1 week",
                lambda w: _rule_body(w, kind="anomaly", op=None, value=None, weeks=1),
                ("body", "weeks"),
            ),
            Bad("file webhook", lambda w: _rule_body(w, webhook_url="file:///etc/passwd"), ("body", "webhook_url")),
        ),
    ),
    ("PATCH", "/api/v1/alert-rules/{rule_id}"): Route(
        "alerts:manage",
        lambda w, _role: Call(path={"rule_id": w.alert_rule()}, body={"value": 2, "enabled": False}, has_body=True),
        (
            Bad(
                "rule id not a number",
                lambda _w: Call(path={"rule_id": "first"}, body={}, has_body=True),
                ("path", "rule_id"),
            ),
            Bad(
                "bad operator",
                lambda w: Call(path={"rule_id": w.alert_rule()}, body={"op": "=="}, has_body=True),
                ("body", "op"),
            ),
            Bad(
                "ftp webhook",
                lambda w: Call(
                    path={"rule_id": w.alert_rule()}, body={"webhook_url": "ftp://x.example/"}, has_body=True
                ),
                ("body", "webhook_url"),
            ),
            # rejected by the service, which names the field without its location
            Bad(
                "weeks on a threshold rule",
                lambda w: Call(path={"rule_id": w.alert_rule()}, body={"weeks": 8}, has_body=True),
                ("weeks",),
            ),
        ),
    ),
    ("DELETE", "/api/v1/alert-rules/{rule_id}"): Route(
        "alerts:manage",
        lambda w, _role: Call(path={"rule_id": w.alert_rule()}),
        (Bad("rule id not a number", lambda _w: Call(path={"rule_id": "first"}), ("path", "rule_id")),),
    ),
    ("GET", "/api/v1/alerts"): Route(
        "alerts:read",
        lambda _w, _role: Call(
            params={"metric": "gmv", "start": "2011-11-01", "end": "2011-12-09", "page": 1, "page_size": 10}
        ),
        (
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("page_size 100000", lambda _w: Call(params={"page_size": 100_000}), ("query", "page_size")),
            Bad("unknown metric", lambda _w: Call(params={"metric": "profit"}), ("query", "metric")),
            Bad("rule id 0", lambda _w: Call(params={"rule_id": 0}), ("query", "rule_id")),
            Bad("not a date", lambda _w: Call(params={"start": "soon"}), ("query", "start")),
            Bad("start after end", lambda _w: Call(params={"start": "2011-12-01", "end": "2011-11-01"}), ("start",)),
        ),
    ),
    ("POST", "/api/v1/alerts/check"): Route(
        "alerts:manage",
        lambda _w, _role: Call(params={"days": 2}),
        (
            Bad("days 0", lambda _w: Call(params={"days": 0}), ("query", "days")),
            Bad("days 1000", lambda _w: Call(params={"days": 1000}), ("query", "days")),
        ),
    ),
    ("GET", "/api/v1/imports"): Route(
        "imports:read",
        lambda _w, _role: Call(params={"limit": 5}),
        (
            Bad("limit 0", lambda _w: Call(params={"limit": 0}), ("query", "limit")),
            Bad("limit 100000", lambda _w: Call(params={"limit": 100_000}), ("query", "limit")),
        ),
    ),
    ("GET", "/api/v1/imports/{run_id}/quarantine"): Route(
        "imports:read",
        lambda w, _role: Call(path={"run_id": w.run_id}, params={"page": 2, "page_size": 5}),
        (
            Bad("run id not a number", lambda _w: Call(path={"run_id": "latest"}), ("path", "run_id")),
            Bad("page 0", lambda w: Call(path={"run_id": w.run_id}, params={"page": 0}), ("query", "page")),
            Bad(
                "page_size 100000",
                lambda w: Call(path={"run_id": w.run_id}, params={"page_size": 100_000}),
                ("query", "page_size"),
            ),
        ),
    ),
    ("GET", "/api/v1/operators"): Route("operators:manage"),
    ("POST", "/api/v1/operators"): Route(
        "operators:manage",
        _new_operator,
        (
            Bad("body not an object", lambda _w: body(["walk", PASSWORD, "admin"]), ("body",)),
            Bad(
                "short password",
                lambda w: body({"username": w.unique("op"), "password": "short", "role": "admin"}),
                ("body", "password"),
            ),
            Bad(
                "unknown role",
                lambda w: body({"username": w.unique("op"), "password": PASSWORD, "role": "owner"}),
                ("body", "role"),
            ),
            Bad(
                "username with a space",
                lambda _w: body({"username": "a b c", "password": PASSWORD, "role": "admin"}),
                ("body", "username"),
            ),
        ),
    ),
    ("GET", "/api/v1/api-keys"): Route("api_keys:manage"),
    ("POST", "/api/v1/api-keys"): Route(
        "api_keys:manage",
        lambda w, _role: body({"name": w.unique("walk-key"), "role": "analyst", "scopes": ["members:read"]}),
        (
            Bad(
                "scopes not a list",
                lambda _w: body({"name": "k", "role": "analyst", "scopes": "members:read"}),
                ("body", "scopes"),
            ),
            Bad(
                "unknown scope",
                lambda _w: body({"name": "k", "role": "analyst", "scopes": ["members:write"]}),
                ("body", "scopes", "0"),
            ),
            Bad("no scopes", lambda _w: body({"name": "k", "role": "analyst", "scopes": []}), ("body", "scopes")),
            Bad(
                "expiry not a date",
                lambda _w: body({"name": "k", "role": "analyst", "scopes": ["kpis:read"], "expires_at": "soon"}),
                ("body", "expires_at"),
            ),
        ),
    ),
    ("DELETE", "/api/v1/api-keys/{key_id}"): Route(
        "api_keys:manage",
        lambda w, _role: Call(path={"key_id": w.revocable_key()}),
        (Bad("key id not a number", lambda _w: Call(path={"key_id": "newest"}), ("path", "key_id")),),
    ),
    ("GET", "/api/v1/audit/verify"): Route("audit:read"),
    ("GET", "/api/v1/audit"): Route(
        "audit:read",
        lambda _w, _role: Call(params={"page": 1, "page_size": 5, "action": "auth.login"}),
        (
            Bad("page 0", lambda _w: Call(params={"page": 0}), ("query", "page")),
            Bad("page_size 100000", lambda _w: Call(params={"page_size": 100_000}), ("query", "page_size")),
            Bad("action too long", lambda _w: Call(params={"action": "a" * 65}), ("query", "action")),
        ),
    ),
}


# Each domain's routes, kept beside this file (tests/api/walk_<domain>.py).
MATRIX: dict[tuple[str, str], Route] = dict(CORE_MATRIX)
for _fragment in sorted(Path(__file__).parent.glob("walk_*.py")):
    if _fragment.stem == "walk_types":
        continue
    _entries = importlib.import_module(f"tests.api.{_fragment.stem}").MATRIX
    _twice = set(_entries) & set(MATRIX)
    assert not _twice, f"{_fragment.name} repeats routes {_twice}"
    MATRIX.update(_entries)


def _schema_routes() -> list[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI schema (nothing is read or written)."""
    app = create_app(Runtime(make_settings(Path("/nonexistent/patron-route-walk"))))
    spec = app.openapi()
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in HTTP_METHODS)


SCHEMA_ROUTES = _schema_routes()
BAD_INPUTS = [(route, bad) for route, entry in MATRIX.items() for bad in entry.bad]


def _route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def _entry(route: tuple[str, str]) -> Route:
    if route not in MATRIX:
        pytest.fail(f"{_route_id(route)} has no entry in the authorization matrix")
    return MATRIX[route]


def _send(client: TestClient, route: tuple[str, str], call: Call) -> httpx2.Response:
    method, template = route
    url = template.format(**call.path)
    if call.has_body:
        return client.request(method, url, params=call.params, json=call.body, headers=call.headers)
    return client.request(method, url, params=call.params, headers=call.headers)


def _holds(role: str, permission: str) -> bool:
    return permission in (PUBLIC, SIGNED_IN) or role in GRANTS[permission]


@pytest.fixture(scope="module")
def world(retail: Runtime, operators: dict[str, str]) -> World:
    return World(
        runtime=retail,
        operators=operators,
        member_key=member_key_of(retail, "12346"),
        run_id=list_imports(retail, limit=1)[0].id,
    )


# --- the schema and the matrix ------------------------------------------------------


def test_rules_grant_exactly_the_documented_table() -> None:
    """GRANTS restates the docstring table of patron.auth.rules; the code must agree with both."""
    doc = rules.__doc__ or ""
    lines = doc.splitlines()
    border = next(i for i, line in enumerate(lines) if line.startswith("====="))
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[border])]
    header = [lines[border + 1][a:b].strip() for a, b in spans]
    documented: dict[str, frozenset[str]] = {}
    for line in itertools.takewhile(lambda s: not s.startswith("====="), lines[border + 3 :]):
        cells = [line[a:b].strip() for a, b in spans]
        documented[cells[0]] = frozenset(role for role, cell in zip(header[1:], cells[1:], strict=True) if cell == "x")

    assert header[1:] == list(ROLES)
    assert documented == GRANTS
    assert dict(rules.PERMISSIONS) == GRANTS


def test_openapi_lists_every_route_with_a_summary_and_the_matrix_covers_them(api_app: FastAPI) -> None:
    with new_client(api_app) as client:
        response = client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    operations = {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in HTTP_METHODS
    }
    assert set(operations) == set(MATRIX)
    assert sorted(operations) == SCHEMA_ROUTES
    missing_summary = [_route_id(r) for r, op in operations.items() if not op.get("summary", "").strip()]
    assert missing_summary == []
    takes_input = {r for r, op in operations.items() if op.get("parameters") or op.get("requestBody")}
    without_bad_input = sorted(_route_id(r) for r in takes_input if not MATRIX[r].bad)
    assert without_bad_input == []
    # no API route hides from the schema (and so from this matrix)
    api_routes = {
        (method, route.path)
        for route in api_app.routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/")
        for method in route.methods
    }
    assert api_routes <= set(operations)


# --- the walk -----------------------------------------------------------------------


@pytest.mark.parametrize("route", SCHEMA_ROUTES, ids=_route_id)
def test_anonymous_callers_get_401_problem_json_except_on_public_routes(
    route: tuple[str, str], world: World, api_app: FastAPI
) -> None:
    entry = _entry(route)

    with new_client(api_app) as anonymous:
        response = _send(anonymous, route, entry.sample(world, "analyst"))

    if entry.permission == PUBLIC:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", SCHEMA_ROUTES, ids=_route_id)
def test_each_role_gets_2xx_with_the_permission_and_403_without(
    route: tuple[str, str], role: str, world: World, clients: dict[str, TestClient], api_app: FastAPI
) -> None:
    entry = _entry(route)
    call = entry.sample(world, role)

    if entry.permission == PUBLIC:
        with new_client(api_app) as anonymous:
            response = _send(anonymous, route, call)
    elif entry.ends_session:
        with new_client(api_app) as own:
            username = world.operators[role]
            if entry.own_operator:
                username = world.unique(f"walk-{role}")
                create_operator(world.runtime.store, OperatorCreate(username=username, password=PASSWORD, role=role))
            sign_in(own, username)
            response = _send(own, route, call)
    else:
        response = _send(clients[role], route, call)

    if _holds(role, entry.permission) and entry.expect is not None:
        assert_problem(response, entry.expect)
    elif _holds(role, entry.permission):
        assert 200 <= response.status_code < 300, response.text
        assert response.headers["content-type"] == "application/json"
    else:
        body = assert_problem(response, 403)
        assert entry.permission in body["detail"]


@pytest.mark.parametrize(("route", "bad"), BAD_INPUTS, ids=[f"{_route_id(r)} {b.label}" for r, b in BAD_INPUTS])
def test_bad_input_is_422_naming_the_field(
    route: tuple[str, str], bad: Bad, world: World, clients: dict[str, TestClient], api_app: FastAPI
) -> None:
    entry = MATRIX[route]

    if entry.permission == PUBLIC:
        with new_client(api_app) as anonymous:
            response = _send(anonymous, route, bad.call(world))
    else:
        response = _send(clients["admin"], route, bad.call(world))

    problem = assert_problem(response, 422)
    assert list(bad.loc) in [error["loc"] for error in problem["errors"]]
    assert all(error["msg"] for error in problem["errors"])


def test_bad_input_from_an_anonymous_caller_is_401_not_422(api_app: FastAPI) -> None:
    with new_client(api_app) as anonymous:
        query = anonymous.get("/api/v1/members", params={"page": 0, "segment": "vip"})
        path = anonymous.get("/api/v1/members/not-a-key")
        payload = anonymous.post("/api/v1/operators", json={"username": "x", "password": "short", "role": "owner"})

    for response in (query, path, payload):
        assert_problem(response, 401)


def test_anonymous_callers_learn_nothing_about_an_unbuilt_store(runtime: Runtime) -> None:
    """Without a build, signed-in readers get 404; anonymous callers still only get 401."""
    create_operator(runtime.store, OperatorCreate(username="reader", password=PASSWORD, role="analyst"))
    paths = ["/api/v1/members", "/api/v1/members/m0123456789abcdef", "/api/v1/segments", "/api/v1/kpis"]

    with new_client(create_app(runtime)) as client:
        anonymous = [client.get(path) for path in paths]
        sign_in(client, "reader")
        signed_in = [client.get(path) for path in paths]

    for response in anonymous:
        assert_problem(response, 401)
    for response in signed_in:
        assert "no profiles built yet" in assert_problem(response, 404)["detail"]


# --- API keys -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_keys(clients: dict[str, TestClient]) -> dict[str, str]:
    """Secrets of keys created through the API: a members:read key, a revoked key, an expired key."""
    admin = clients["admin"]

    def create(**fields: object) -> dict[str, Any]:
        response = admin.post("/api/v1/api-keys", json={"role": "analyst", "scopes": ["members:read"], **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        assert created["key"].startswith(f"pk_{created['prefix']}_")
        return created

    reader = create(name="members reader")
    revoked = create(name="revoked reader")
    revocation = admin.delete(f"/api/v1/api-keys/{revoked['id']}")
    assert revocation.status_code == 200 and revocation.json()["revoked_at"] is not None
    expired = create(name="expired reader", expires_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    return {"reader": reader["key"], "revoked": revoked["key"], "expired": expired["key"]}


def _key_headers(style: str, key: str) -> dict[str, str]:
    return {"X-API-Key": key} if style == "x-api-key" else {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
def test_a_members_read_key_lists_members_but_gets_403_on_kpis(
    style: str, api_keys: dict[str, str], api_app: FastAPI
) -> None:
    headers = _key_headers(style, api_keys["reader"])

    with new_client(api_app) as client:
        members = client.get("/api/v1/members", params={"q": "12346"}, headers=headers)
        me = client.get("/api/v1/auth/me", headers=headers)
        kpis = client.get("/api/v1/kpis", headers=headers)
        segments = client.get("/api/v1/segments", headers=headers)

    assert members.status_code == 200 and members.json()["total"] == 1
    assert me.json() == {
        "kind": "api_key",
        "name": "members reader",
        "role": "analyst",
        "scopes": ["members:read"],
        "mfa_enrolment_required": False,
    }
    assert "kpis:read" in assert_problem(kpis, 403)["detail"]
    assert_problem(segments, 403)


@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
@pytest.mark.parametrize(("kind", "detail"), [("revoked", "revoked"), ("expired", "expired")])
def test_revoked_and_expired_keys_get_401(
    kind: str, detail: str, style: str, api_keys: dict[str, str], api_app: FastAPI
) -> None:
    with new_client(api_app) as client:
        response = client.get("/api/v1/members", headers=_key_headers(style, api_keys[kind]))

    assert detail in assert_problem(response, 401)["detail"]


def test_a_key_narrowed_to_members_read_never_sees_personal_fields(
    clients: dict[str, TestClient], world: World, api_app: FastAPI
) -> None:
    created = clients["admin"].post(
        "/api/v1/api-keys", json={"name": "support reader", "role": "support", "scopes": ["members:read"]}
    )
    assert created.status_code == 201

    with new_client(api_app) as client:
        response = client.get(f"/api/v1/members/{world.member_key}", headers={"X-API-Key": created.json()["key"]})

    assert response.status_code == 200
    assert response.json()["personal"] is None


def test_listing_keys_never_shows_their_secrets(api_keys: dict[str, str], clients: dict[str, TestClient]) -> None:
    response = clients["admin"].get("/api/v1/api-keys")

    assert response.status_code == 200
    assert all("key" not in item for item in response.json())
    assert not any(secret in response.text for secret in api_keys.values())


# --- sessions -------------------------------------------------------------------------


def test_logout_revokes_the_session(api_app: FastAPI, operators: dict[str, str]) -> None:
    with new_client(api_app) as client:
        token = sign_in(client, operators["marketer"])
        before = client.get("/api/v1/auth/me")
        logout = client.post("/api/v1/auth/logout")
    with new_client(api_app) as replay:
        replay.cookies.set("patron_session", token)
        with_cookie = replay.get("/api/v1/auth/me")
    with new_client(api_app) as bearer:
        with_bearer = bearer.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert before.status_code == 200 and before.json()["name"] == operators["marketer"]
    assert logout.status_code == 200
    assert any(c.startswith('patron_session=""') and "Max-Age=0" in c for c in logout.headers.get_list("set-cookie"))
    assert "session has ended" in assert_problem(with_cookie, 401)["detail"]
    assert_problem(with_bearer, 401)


def test_the_session_token_also_works_as_a_bearer_token(api_app: FastAPI, operators: dict[str, str]) -> None:
    with new_client(api_app) as client:
        token = sign_in(client, operators["support"])
    with new_client(api_app) as bearer:
        response = bearer.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json() == {
        "kind": "operator",
        "name": operators["support"],
        "role": "support",
        "scopes": [],
        "mfa_enrolment_required": False,
    }


def test_a_wrong_password_is_401_and_sets_no_cookie(api_app: FastAPI, operators: dict[str, str]) -> None:
    with new_client(api_app) as client:
        response = client.post(
            "/api/v1/auth/login", json={"username": operators["admin"], "password": "wrong-password"}
        )

        assert_problem(response, 401)
        assert "patron_session" not in client.cookies


# --- personal fields and the audit log ------------------------------------------------


def _audit(admin: TestClient, action: str) -> list[dict[str, Any]]:
    response = admin.get("/api/v1/audit", params={"action": action, "page_size": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# What each role sees of the personal fields without and with a reason ("none": the field is null; a reason
# from a role without members:personal is refused). The values themselves, masked and in full, are checked on
# the demo shop, which has contact data: tests/pseudonymization/test_field_access.py.
FIELD_VIEWS = {
    "admin": ("full", "full"),
    "support": ("masked", "full"),
    "analyst": ("none", 403),
    "marketer": ("none", 403),
}
REASON = "customer asked about an order"


def _reads(clients: dict[str, TestClient], world: World, role: str) -> list[dict[str, Any]]:
    actor = f"operator:{world.operators[role]}"
    return [e for e in _audit(clients["admin"], "member.personal_read") if e["actor"] == actor]


@pytest.mark.parametrize("role", ROLES)
def test_member_360_shows_personal_fields_by_role(role: str, world: World, clients: dict[str, TestClient]) -> None:
    plain, with_reason = FIELD_VIEWS[role]

    response = clients[role].get(f"/api/v1/members/{world.member_key}")
    given = clients[role].get(f"/api/v1/members/{world.member_key}", params={"reason": REASON})

    assert response.status_code == 200
    personal = response.json()["personal"]
    if plain == "none":
        assert personal is None
        assert "members:personal" in assert_problem(given, 403)["detail"]
        assert _reads(clients, world, role) == []
        return
    # online-retail carries no contact data: only the source identity is personal (and shown masked or not)
    identity = {"source": "online-retail", "source_id": "12346", "name": None, "email": None, "phone": None}
    assert personal == identity | {"address": None, "birthday": None, "masked": plain == "masked"}
    assert given.status_code == 200 and given.json()["personal"]["masked"] is (with_reason == "masked")
    reads = _reads(clients, world, role)
    assert [e["details"] for e in reads[:2]] == [{"view": with_reason, "reason": REASON}, {"view": plain}]
    assert all(e["target"] == world.member_key and e["source_ip"] == CLIENT_IP for e in reads)


@pytest.mark.parametrize("role", ROLES)
def test_searching_by_email_needs_members_personal(role: str, world: World, clients: dict[str, TestClient]) -> None:
    response = clients[role].get("/api/v1/members", params={"q": "nobody@example.com"})

    if role in GRANTS["members:personal"]:
        assert response.status_code == 200 and response.json()["total"] == 0
    else:
        assert "members:personal" in assert_problem(response, 403)["detail"]


@pytest.fixture(scope="module")
def audited(world: World, clients: dict[str, TestClient], api_app: FastAPI) -> dict[str, Any]:
    """Every kind of audited write, done once through the API."""
    admin = clients["admin"]
    username = world.unique("audited")
    created = admin.post("/api/v1/operators", json={"username": username, "password": PASSWORD, "role": "support"})
    assert created.status_code == 201, created.text
    with new_client(api_app) as client:
        failed = client.post("/api/v1/auth/login", json={"username": username, "password": "not-the-password"})
        assert failed.status_code == 401
        sign_in(client, username)
        assert client.get(f"/api/v1/members/{world.member_key}").status_code == 200
        assert client.post("/api/v1/auth/logout").status_code == 200
    key = admin.post("/api/v1/api-keys", json={"name": username, "role": "marketer", "scopes": ["segments:read"]})
    assert key.status_code == 201, key.text
    assert admin.delete(f"/api/v1/api-keys/{key.json()['id']}").status_code == 200
    return {"username": username, "operator_id": created.json()["id"], "key_id": key.json()["id"]}


def test_every_write_leaves_an_audit_entry_with_actor_action_target_and_source_ip(
    audited: dict[str, Any], world: World, clients: dict[str, TestClient]
) -> None:
    admin_actor = f"operator:{world.operators['admin']}"
    actor = f"operator:{audited['username']}"
    expected = [
        ("operator.create", admin_actor, f"operator:{audited['operator_id']}"),
        ("auth.login_failed", actor, None),
        ("auth.login", actor, f"operator:{audited['operator_id']}"),
        ("member.personal_read", actor, world.member_key),
        ("auth.logout", actor, f"operator:{audited['operator_id']}"),
        ("api_key.create", admin_actor, f"api_key:{audited['key_id']}"),
        ("api_key.revoke", admin_actor, f"api_key:{audited['key_id']}"),
    ]

    for action, who, target in expected:
        entries = [e for e in _audit(clients["admin"], action) if e["actor"] == who and e["target"] == target]
        assert len(entries) == 1, (action, who, target)
        assert entries[0]["source_ip"] == CLIENT_IP
        assert entries[0]["at"]


def test_sign_in_and_sign_out_entries_name_the_operator_as_target(
    audited: dict[str, Any], clients: dict[str, TestClient]
) -> None:
    for action in ("auth.login", "auth.logout"):
        entries = [e for e in _audit(clients["admin"], action) if e["actor"] == f"operator:{audited['username']}"]
        assert [e["target"] for e in entries] == [f"operator:{audited['operator_id']}"]


def test_the_audit_log_is_newest_first(audited: dict[str, Any], clients: dict[str, TestClient]) -> None:
    response = clients["admin"].get("/api/v1/audit", params={"page_size": 50})

    ids = [e["id"] for e in response.json()["items"]]
    assert ids == sorted(ids, reverse=True)
    assert response.json()["total"] >= len(ids) > 0


# --- errors ---------------------------------------------------------------------------


def test_errors_are_problem_json(world: World, clients: dict[str, TestClient], api_app: FastAPI) -> None:
    admin = clients["admin"]
    with new_client(api_app) as anonymous:
        unauthenticated = anonymous.get("/api/v1/segments")
        unknown_path = anonymous.get("/api/v1/nothing-here")
    forbidden = clients["marketer"].get("/api/v1/audit")
    no_member = admin.get("/api/v1/members/m0000000000000000")
    no_run = admin.get("/api/v1/imports/999999/quarantine")
    no_key = admin.delete("/api/v1/api-keys/999999")
    wrong_method = admin.put("/api/v1/members")
    duplicate = admin.post(
        "/api/v1/operators", json={"username": world.operators["analyst"], "password": PASSWORD, "role": "analyst"}
    )
    invalid = admin.get("/api/v1/members", params={"page": 0})

    assert_problem(unauthenticated, 401)
    assert_problem(unknown_path, 404)
    assert_problem(forbidden, 403)
    assert "m0000000000000000" in assert_problem(no_member, 404)["detail"]
    assert "999999" in assert_problem(no_run, 404)["detail"]
    assert "999999" in assert_problem(no_key, 404)["detail"]
    assert_problem(wrong_method, 405)
    assert "exists already" in assert_problem(duplicate, 409)["detail"]
    assert assert_problem(invalid, 422)["errors"][0]["loc"] == ["query", "page"]
