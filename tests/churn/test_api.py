"""GET /churn through a FastAPI app holding the churn router, with real API keys and builds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from patron.api.errors import install_error_handlers
from patron.api.routers import churn
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.churn import ChurnResult
from patron.runtime import Runtime
from tests.churn.conftest import publish_build

PROBLEM = "application/problem+json"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.runtime = runtime
    install_error_handlers(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(churn.router)
    app.include_router(api)
    with TestClient(app) as test_client:
        yield test_client


def _key(runtime: Runtime, *scopes: str) -> dict[str, str]:
    created = create_api_key(runtime.store, ApiKeyCreate(name="churn-test", role="analyst", scopes=list(scopes)), None)
    return {"x-api-key": created.key}


def test_the_current_build_s_report(runtime: Runtime, client: TestClient, simulated_churn: ChurnResult) -> None:
    publish_build(runtime, simulated_churn)

    response = client.get("/api/v1/churn", headers=_key(runtime, "segments:read"))

    assert response.status_code == 200, response.text
    body = response.json()
    expected = simulated_churn.report()
    assert body["status"] == "ok" and body["horizon_days"] == 90
    assert body["metrics"]["model"]["auc"] == expected["metrics"]["model"]["auc"]
    assert body["metrics"]["recency"]["brier"] is None
    assert len(body["metrics"]["model"]["calibration"]) == 10
    assert body["validation"]["members"] == expected["validation"]["members"]
    assert [f["feature"] for f in body["feature_importance"]] == [f["feature"] for f in expected["feature_importance"]]


def test_a_build_without_a_churn_report_is_404(runtime: Runtime, client: TestClient) -> None:
    publish_build(runtime, None)

    response = client.get("/api/v1/churn", headers=_key(runtime, "segments:read"))

    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
    assert "no churn report" in response.json()["detail"]


def test_no_build_at_all_is_404(runtime: Runtime, client: TestClient) -> None:
    response = client.get("/api/v1/churn", headers=_key(runtime, "segments:read"))

    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM


def test_callers_need_segments_read(runtime: Runtime, client: TestClient, simulated_churn: ChurnResult) -> None:
    publish_build(runtime, simulated_churn)

    assert client.get("/api/v1/churn").status_code == 401
    assert client.get("/api/v1/churn", headers=_key(runtime, "kpis:read")).status_code == 403
