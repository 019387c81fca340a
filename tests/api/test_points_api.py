"""The points routes over HTTP: idempotency headers, conflicts, adjustments audited, jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.api.app import create_app
from patron.audit.models import AuditEntry
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, new_client, sign_in

BASE = "/api/v1/loyalty/members/m-1/points"
pytestmark = pytest.mark.slow  # each test migrates a fresh store


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    create_operator(runtime.store, OperatorCreate(username="points-admin", password=PASSWORD, role="admin"))
    with new_client(create_app(runtime)) as http:
        sign_in(http, "points-admin")
        yield http


def test_earn_replays_with_the_same_key_and_conflicts_with_another_request(client: TestClient) -> None:
    first = client.post(f"{BASE}/earn", json={"points": 50, "reference": "o-1"}, headers={"Idempotency-Key": "k1"})
    again = client.post(f"{BASE}/earn", json={"points": 50, "reference": "o-1"}, headers={"Idempotency-Key": "k1"})
    other = client.post(f"{BASE}/earn", json={"points": 51, "reference": "o-1"}, headers={"Idempotency-Key": "k1"})

    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert_problem(other, 409)
    assert client.get(BASE).json()["available"] == 50


def test_a_write_without_a_key_is_422_naming_the_header(client: TestClient) -> None:
    response = client.post(f"{BASE}/earn", json={"points": 50, "reference": "o-1"})

    problem = assert_problem(response, 422)
    assert ["header", "Idempotency-Key"] in [e["loc"] for e in problem["errors"]]


def test_redeem_beyond_the_balance_is_409_and_history_pages(client: TestClient) -> None:
    client.post(f"{BASE}/earn", json={"points": 50, "reference": "o-1"}, headers={"Idempotency-Key": "k1"})
    too_much = client.post(f"{BASE}/redeem", json={"points": 51, "reference": "b-1"}, headers={"Idempotency-Key": "k2"})
    assert_problem(too_much, 409)
    spent = client.post(f"{BASE}/redeem", json={"points": 20, "reference": "b-1"}, headers={"Idempotency-Key": "k3"})
    assert spent.status_code == 200

    history = client.get(f"{BASE}/history", params={"page_size": 1}).json()
    assert history["total"] == 2 and [t["kind"] for t in history["items"]] == ["redeem"]
    assert [lot["remaining"] for lot in client.get(f"{BASE}/lots").json()] == [30]


def test_adjustments_are_audited_and_returns_reverse(client: TestClient, runtime: Runtime) -> None:
    adjusted = client.post(f"{BASE}/adjust", json={"points": 5, "reason": "goodwill"}, headers={"Idempotency-Key": "a"})
    client.post(f"{BASE}/earn", json={"points": 50, "reference": "o-1"}, headers={"Idempotency-Key": "k1"})
    reversed_ = client.post(
        "/api/v1/loyalty/points/reverse",
        json={"reference": "o-1", "reason": "returned"},
        headers={"Idempotency-Key": "r"},
    )

    assert adjusted.status_code == 200
    assert reversed_.json()["reversal"]["points"] == 50
    assert client.get(BASE).json()["available"] == 5
    with runtime.store.session() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("points.%"))))
        reversal = s.scalars(select(AuditEntry).where(AuditEntry.action == "points.reverse")).one()
    assert actions == ["points.adjust", "points.earn", "points.reverse"]
    assert (reversal.target, reversal.details["points"], reversal.details["shortfall"]) == ("reference:o-1", 50, 0)


def test_jobs_run_over_http(client: TestClient) -> None:
    activated = client.post("/api/v1/loyalty/jobs/activate-points")
    expired = client.post("/api/v1/loyalty/jobs/expire-points", params={"as_of": "2030-01-01T00:00:00Z"})

    assert activated.json()["lots"] == 0 and expired.json()["job"] == "expire"
