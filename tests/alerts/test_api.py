"""The alerts API over HTTP on the planned shop: permissions, problem+json errors, audit, check and listing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.api.routers.alerts import router
from patron.audit.service import list_audit
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.runtime import Runtime
from tests.alerts.conftest import SPIKE_DAY, ZERO_DAY, Receiver
from tests.api.conftest import CLIENT_IP, ROLES, assert_problem, new_client

NO_ORDERS = {"name": "no orders", "metric": "orders", "kind": "threshold", "op": "<", "value": 1}
SPIKE = {"name": "orders spike", "metric": "orders", "kind": "anomaly", "direction": "up"}


def alerts_app(runtime: Runtime) -> FastAPI:
    """The real app with the alerts router (once, whether or not create_app already includes it)."""
    app = create_app(runtime)
    if not any(getattr(route, "path", "") == "/api/v1/alert-rules" for route in app.routes):
        app.include_router(router, prefix="/api/v1")
    return app


@pytest.fixture
def clients(shop: Runtime) -> Iterator[dict[str, TestClient]]:
    """A client per role, each with an API key of that role (hashing passwords would cost seconds per test)."""
    app = alerts_app(shop)
    with ExitStack() as stack:
        keyed: dict[str, TestClient] = {}
        for role in ROLES:
            data = ApiKeyCreate(name=role, role=role, scopes=["alerts:read", "alerts:manage"])
            client = stack.enter_context(new_client(app))
            client.headers["X-API-Key"] = create_api_key(shop.store, data, None).key
            keyed[role] = client
        yield keyed


def created(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/alert-rules", json=body)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def test_rules_round_trip_and_the_secret_is_shown_only_at_creation(clients: dict[str, TestClient]) -> None:
    analyst = clients["analyst"]

    rule = created(analyst, {**NO_ORDERS, "webhook_url": "https://hooks.example.com/patron"})
    listed = clients["marketer"].get("/api/v1/alert-rules")
    patched = analyst.patch(f"/api/v1/alert-rules/{rule['id']}", json={"value": 2, "enabled": False})
    deleted = analyst.delete(f"/api/v1/alert-rules/{rule['id']}")
    after = analyst.get("/api/v1/alert-rules")

    assert rule["webhook_secret"].startswith("whsec_") and rule["created_by"] == "api_key:analyst"
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [rule["id"]]
    assert "webhook_secret" not in listed.json()[0] and rule["webhook_secret"] not in listed.text
    assert patched.status_code == 200 and (patched.json()["value"], patched.json()["enabled"]) == (2, False)
    assert deleted.status_code == 200 and deleted.json()["name"] == "no orders"
    assert after.json() == []


def test_permissions_follow_the_roles(clients: dict[str, TestClient], shop: Runtime) -> None:
    rule = created(clients["admin"], NO_ORDERS)

    marketer_reads = clients["marketer"].get("/api/v1/alerts")
    marketer_writes = clients["marketer"].post("/api/v1/alert-rules", json=SPIKE)
    marketer_checks = clients["marketer"].post("/api/v1/alerts/check")
    marketer_deletes = clients["marketer"].delete(f"/api/v1/alert-rules/{rule['id']}")
    support_reads = clients["support"].get("/api/v1/alert-rules")
    with new_client(alerts_app(shop)) as anonymous:
        nobody = anonymous.get("/api/v1/alerts")

    assert marketer_reads.status_code == 200
    for response in (marketer_writes, marketer_checks, marketer_deletes):
        assert "alerts:manage" in assert_problem(response, 403)["detail"]
    assert "alerts:read" in assert_problem(support_reads, 403)["detail"]
    assert_problem(nobody, 401)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**NO_ORDERS, "metric": "profit"}, ["body", "metric"]),
        ({**NO_ORDERS, "op": "=>"}, ["body", "op"]),
        ({**NO_ORDERS, "value": None}, ["body", "value"]),
        ({**SPIKE, "weeks": 0}, ["body", "weeks"]),
        ({**SPIKE, "weeks": 4, "min_weeks": 5}, ["body", "min_weeks"]),
        ({**NO_ORDERS, "webhook_url": "file:///etc/passwd"}, ["body", "webhook_url"]),
        ({**NO_ORDERS, "webhook_url": "gopher://example.com/"}, ["body", "webhook_url"]),
    ],
)
def test_bad_rules_are_422_problems_naming_the_field(
    clients: dict[str, TestClient], body: dict[str, Any], loc: list[str]
) -> None:
    response = clients["analyst"].post("/api/v1/alert-rules", json=body)

    problem = assert_problem(response, 422)
    assert loc in [error["loc"] for error in problem["errors"]]


def test_bad_patches_unknown_rules_and_taken_names(clients: dict[str, TestClient]) -> None:
    analyst = clients["analyst"]
    rule = created(analyst, NO_ORDERS)
    created(analyst, SPIKE)

    breaks = analyst.patch(f"/api/v1/alert-rules/{rule['id']}", json={"weeks": 8})
    refused_url = analyst.patch(f"/api/v1/alert-rules/{rule['id']}", json={"webhook_url": "ftp://x.example/"})
    missing = analyst.patch("/api/v1/alert-rules/999999", json={"enabled": True})
    missing_delete = analyst.delete("/api/v1/alert-rules/999999")
    taken = analyst.patch(f"/api/v1/alert-rules/{rule['id']}", json={"name": "orders spike"})
    duplicate = analyst.post("/api/v1/alert-rules", json=NO_ORDERS)

    assert assert_problem(breaks, 422)["errors"][0]["loc"] == ["weeks"]
    assert ["body", "webhook_url"] in [e["loc"] for e in assert_problem(refused_url, 422)["errors"]]
    assert "999999" in assert_problem(missing, 404)["detail"]
    assert_problem(missing_delete, 404)
    assert "exists already" in assert_problem(taken, 409)["detail"]
    assert_problem(duplicate, 409)


def test_check_then_list_with_filters(clients: dict[str, TestClient]) -> None:
    analyst = clients["analyst"]
    threshold = created(analyst, NO_ORDERS)
    created(analyst, SPIKE)

    fired = analyst.post("/api/v1/alerts/check", params={"days": 7})
    again = analyst.post("/api/v1/alerts/check", params={"days": 7})
    listed = clients["marketer"].get("/api/v1/alerts")
    by_rule = analyst.get("/api/v1/alerts", params={"rule_id": threshold["id"]})
    by_range = analyst.get("/api/v1/alerts", params={"start": "2024-03-28", "end": "2024-03-31", "metric": "orders"})
    paged = analyst.get("/api/v1/alerts", params={"page": 2, "page_size": 1})

    assert fired.status_code == 200
    assert [(a["day"], a["rule_name"]) for a in fired.json()] == [
        (SPIKE_DAY.isoformat(), "orders spike"),
        (ZERO_DAY.isoformat(), "no orders"),
    ]
    assert again.json() == []
    assert listed.json()["total"] == 2 and [a["day"] for a in listed.json()["items"]] == [
        SPIKE_DAY.isoformat(),
        ZERO_DAY.isoformat(),
    ]
    assert [a["day"] for a in by_rule.json()["items"]] == [ZERO_DAY.isoformat()]
    assert [a["day"] for a in by_range.json()["items"]] == [SPIKE_DAY.isoformat()]
    assert paged.json()["page"] == 2 and [a["day"] for a in paged.json()["items"]] == [ZERO_DAY.isoformat()]


@pytest.mark.parametrize(
    ("method", "path", "params", "loc"),
    [
        ("GET", "/api/v1/alerts", {"page": 0}, ["query", "page"]),
        ("GET", "/api/v1/alerts", {"page_size": 501}, ["query", "page_size"]),
        ("GET", "/api/v1/alerts", {"metric": "profit"}, ["query", "metric"]),
        ("GET", "/api/v1/alerts", {"start": "2024-02-30"}, ["query", "start"]),
        ("GET", "/api/v1/alerts", {"start": "2024-03-02", "end": "2024-03-01"}, ["start"]),
        ("GET", "/api/v1/alerts", {"rule_id": 0}, ["query", "rule_id"]),
        ("POST", "/api/v1/alerts/check", {"days": 0}, ["query", "days"]),
        ("POST", "/api/v1/alerts/check", {"days": 367}, ["query", "days"]),
        ("DELETE", "/api/v1/alert-rules/first", {}, ["path", "rule_id"]),
    ],
)
def test_bad_query_and_path_values_are_422(
    clients: dict[str, TestClient], method: str, path: str, params: dict[str, Any], loc: list[str]
) -> None:
    response = clients["admin"].request(method, path, params=params)

    assert loc in [error["loc"] for error in assert_problem(response, 422)["errors"]]


def test_rule_changes_and_checks_are_audited(clients: dict[str, TestClient], shop: Runtime) -> None:
    analyst = clients["analyst"]
    rule = created(analyst, NO_ORDERS)
    analyst.patch(f"/api/v1/alert-rules/{rule['id']}", json={"enabled": False})
    analyst.post("/api/v1/alerts/check")
    analyst.delete(f"/api/v1/alert-rules/{rule['id']}")

    entries = [e for e in list_audit(shop.store, page_size=100).items if e.action.startswith("alert")]

    assert [(e.action, e.target) for e in reversed(entries)] == [
        ("alert_rule.create", f"alert_rule:{rule['id']}"),
        ("alert_rule.update", f"alert_rule:{rule['id']}"),
        ("alerts.check", None),
        ("alert_rule.delete", f"alert_rule:{rule['id']}"),
    ]
    assert all(e.actor == "api_key:analyst" and e.source_ip == CLIENT_IP for e in entries)
    assert entries[2].details["fields"] == ["enabled"]
    (changed,) = entries[2].details["changes"]
    assert changed["table"] == "alert_rules" and changed["fields"]["enabled"][0] is True
    assert changed["fields"]["enabled"][1] is False and set(changed["fields"]) <= {"enabled", "updated_at"}
    assert rule["webhook_secret"] not in str([e.details for e in entries])


def test_the_check_posts_webhooks(clients: dict[str, TestClient], receiver: Receiver) -> None:
    created(clients["analyst"], {**NO_ORDERS, "webhook_url": receiver.url})

    fired = clients["analyst"].post("/api/v1/alerts/check", params={"days": 7})

    assert [a["delivery_status"] for a in fired.json()] == ["delivered"]
    assert len(receiver.requests) == 1


def test_without_a_build_the_check_is_404(runtime: Runtime) -> None:
    key = create_api_key(runtime.store, ApiKeyCreate(name="a", role="analyst", scopes=["alerts:manage"]), None)
    with new_client(alerts_app(runtime)) as client:
        client.headers["X-API-Key"] = key.key
        created(client, NO_ORDERS)
        response = client.post("/api/v1/alerts/check")

    assert "no profiles built yet" in assert_problem(response, 404)["detail"]
