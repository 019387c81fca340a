"""Error responses without internals: a generic 500 with a request id, the console's own 404 and 500 pages."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from patron.api.app import create_app
from tests.api.conftest import assert_problem
from tests.security.conftest import PASSWORD, Shop, build_shop

INTERNALS = ("Traceback", "sqlalchemy", "SELECT", "api_keys", "operator_sessions", "no such table", ".py")


@pytest.fixture
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, FastAPI]]:
    """A shop on an embedded store whose API-key and session tables were dropped after sign-in forms were served."""
    shop = build_shop(tmp_path_factory.mktemp("broken") / "home", database_url=None)
    app = create_app(shop.runtime)
    yield shop, app
    shop.runtime.close()


def _break(shop: Shop) -> None:
    with shop.runtime.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE api_keys"))
        conn.execute(text("DROP TABLE operator_sessions"))


def test_an_unhandled_error_is_a_generic_500_naming_only_a_request_id(
    broken: tuple[Shop, FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    shop, app = broken
    _break(shop)
    with caplog.at_level(logging.ERROR, logger="patron.api.security"), TestClient(app) as client:
        response = client.get("/api/v1/members", headers={"X-API-Key": shop.admin_key})

    body = assert_problem(response, 500)
    request_id = response.headers["X-Request-ID"]
    assert body["request_id"] == request_id and request_id in body["detail"]
    assert not any(word in response.text for word in INTERNALS)
    assert response.headers["Cache-Control"] == "no-store"
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the traceback goes to the log, with the id


def test_the_console_answers_an_unhandled_error_with_its_own_page(broken: tuple[Shop, FastAPI]) -> None:
    shop, app = broken
    with TestClient(app) as client:
        signed = client.post("/api/v1/auth/login", json={"username": "analyst", "password": PASSWORD})
        assert signed.status_code == 200
        _break(shop)
        page = client.get("/members", headers={"Accept": "text/html"})

    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["X-Request-ID"] in page.text
    assert not any(word in page.text for word in INTERNALS)
    assert re.search(r"<script", page.text) is None
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_an_unknown_console_page_is_the_console_404_and_the_api_keeps_json(shop_app: FastAPI) -> None:
    with TestClient(shop_app) as client:
        page = client.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
        method = client.get("/logout", headers={"Accept": "text/html"})
        api = client.get("/api/v1/no-such-route", headers={"Accept": "text/html"})
        script = client.get("/api/v1/members/<script>", headers={"Accept": "application/json"})

    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'data-error="not_found"' in page.text
    assert method.status_code == 405 and 'data-error="not_found"' in method.text
    assert assert_problem(api, 404)["title"] == "Not Found"
    assert script.status_code in (401, 404, 422) and "<script>" not in script.text
