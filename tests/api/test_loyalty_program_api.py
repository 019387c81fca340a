"""The loyalty program over HTTP: set up a program, earn, return, pay events, tiers and jobs, all audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.audit.models import AuditEntry
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, new_client, sign_in

MEMBER = "m0000000000000a07"
ORDERS = "/api/v1/loyalty/orders"


@pytest.fixture
def marketer(runtime: Runtime) -> Iterator[TestClient]:
    create_operator(runtime.store, OperatorCreate(username="mkt", password=PASSWORD, role="marketer"))
    with new_client(create_app(runtime)) as client:
        sign_in(client, "mkt")
        yield client


def _order(key: str, amount: str = "120.00", **fields: Any) -> dict[str, Any]:
    paid = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    line = {"sku": "tea", "category": "food", "amount": amount}
    return {"order_key": key, "member_key": MEMBER, "paid_at": paid, "lines": [line], **fields}


def _set_up(client: TestClient) -> None:
    calls = [
        client.patch("/api/v1/loyalty/settings", json={"tier_basis": "spend", "downgrade_policy": "on_return"}),
        client.post("/api/v1/loyalty/earning-rules", json={"name": "base", "kind": "base", "points_per_unit": "1"}),
        client.post(
            "/api/v1/loyalty/earning-rules",
            json={"name": "food x2", "kind": "multiplier", "scope": "category", "match": "food", "multiplier": 2},
        ),
        client.post("/api/v1/loyalty/tiers", json={"code": "silver", "name": "银卡", "threshold": 100}),
        client.put("/api/v1/loyalty/event-rules/sign_up", json={"points": 50}),
    ]
    assert [c.status_code for c in calls] == [200, 201, 201, 201, 200], [c.text for c in calls]


def test_an_order_earns_once_upgrades_and_a_retry_replays(marketer: TestClient) -> None:
    _set_up(marketer)
    headers = {"Idempotency-Key": "order-1"}

    placed = _order("o-1")
    first = marketer.post(ORDERS, json=placed, headers=headers)
    retry = marketer.post(ORDERS, json=placed, headers=headers)
    changed = marketer.post(ORDERS, json=_order("o-2"), headers=headers)
    missing = marketer.post(ORDERS, json=_order("o-3"))

    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["points"], body["replayed"]) == (240, False)
    assert body["explanation"]["lines"][0]["multipliers"][0]["rule"] == "food x2"
    assert body["tier_change"]["to_tier"] == "silver"
    assert retry.json()["replayed"] is True and retry.json()["points"] == 240
    assert "different request" in assert_problem(changed, 409)["detail"]
    assert assert_problem(missing, 422)["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_dry_run_explains_and_writes_nothing(marketer: TestClient) -> None:
    _set_up(marketer)

    explained = marketer.post(f"{ORDERS}/dry-run", json=_order("o-dry", "10.99"))
    after = marketer.get(f"{ORDERS}/o-dry")

    assert explained.status_code == 200
    assert explained.json()["points"] == 21  # floor(10.99 x 1 x 2)
    assert any("rounding down" in reason for reason in explained.json()["reasons"])
    assert_problem(after, 404)


def test_a_return_takes_points_back_and_downgrades_on_return(marketer: TestClient) -> None:
    _set_up(marketer)
    marketer.post(ORDERS, json=_order("o-r"), headers={"Idempotency-Key": "k"})

    returned = marketer.post(f"{ORDERS}/o-r/returns", json={}, headers={"Idempotency-Key": "ret"})
    tier = marketer.get(f"/api/v1/loyalty/members/{MEMBER}/tier")
    unknown = marketer.post(f"{ORDERS}/nothing/returns", json={}, headers={"Idempotency-Key": "ret-2"})

    assert returned.status_code == 200, returned.text
    assert (returned.json()["status"], returned.json()["points_reversed"]) == ("returned", 240)
    assert returned.json()["tier_change"]["reason"] == "on_return"
    assert tier.json()["tier"] is None
    assert [c["reason"] for c in tier.json()["history"]] == ["on_return", "upgrade"]
    assert_problem(unknown, 404)


def test_events_pay_once(marketer: TestClient) -> None:
    _set_up(marketer)
    event = {"member_key": MEMBER, "event": "sign_up", "occurred_at": datetime.now(UTC).isoformat()}

    first = marketer.post("/api/v1/loyalty/events", json=event, headers={"Idempotency-Key": "e1"})
    second = marketer.post("/api/v1/loyalty/events", json=event, headers={"Idempotency-Key": "e2"})

    assert (first.json()["awarded"], first.json()["points"]) == (True, 50)
    assert (second.json()["awarded"], second.json()["reason"]) == (False, "already awarded for once")


def test_bad_rules_and_tiers_name_the_field(marketer: TestClient) -> None:
    _set_up(marketer)

    second_base = marketer.post(
        "/api/v1/loyalty/earning-rules", json={"name": "b2", "kind": "base", "points_per_unit": 2}
    )
    same_threshold = marketer.post("/api/v1/loyalty/tiers", json={"code": "gold", "name": "g", "threshold": 100})
    campaign = marketer.post(
        "/api/v1/loyalty/earning-rules",
        json={
            "name": "618",
            "kind": "multiplier",
            "scope": "campaign",
            "multiplier": 3,
            "starts_at": "2026-06-18T00:00:00Z",
        },
    )

    assert "enabled already" in assert_problem(second_base, 409)["detail"]
    assert_problem(same_threshold, 409)
    assert assert_problem(campaign, 422)["errors"][0]["loc"] == ["ends_at"]


def test_jobs_are_listed_and_run_and_writes_are_audited(marketer: TestClient, runtime: Runtime) -> None:
    _set_up(marketer)

    listed = marketer.get("/api/v1/loyalty/jobs")
    ran = marketer.post("/api/v1/loyalty/jobs/tier-reevaluation/run")
    runs = marketer.get("/api/v1/loyalty/jobs/tier-reevaluation/runs")

    assert {j["name"] for j in listed.json()} == {
        "points-activation",
        "points-expiry",
        "tier-reevaluation",
        "coupon-expiry",
    }
    assert ran.json()["status"] == "succeeded"
    assert [r["id"] for r in runs.json()] == [ran.json()["id"]]
    with runtime.store.session() as session:
        actions = {e.action for e in session.query(AuditEntry).filter(AuditEntry.actor == "operator:mkt")}
    assert {"loyalty_settings.update", "earning_rule.create", "loyalty_tier.create", "event_rule.set"} <= actions
    assert "loyalty_job.run" in actions
