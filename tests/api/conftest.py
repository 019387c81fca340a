"""API fixtures: the session's online-retail build behind the real app, one operator per role.

The operators live in the ``retail`` runtime's own (SQLite) store, which the
whole session shares, so every module creates operators with names of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.members.models import MemberIdentity
from patron.runtime import Runtime

ROLES = ("admin", "analyst", "marketer", "support")
PASSWORD = "api-test-pass-1"
CLIENT_IP = "203.0.113.7"  # TEST-NET-3: the address every test client connects from
PROBLEM_JSON = "application/problem+json"


def new_client(app: FastAPI) -> TestClient:
    """A client without cookies; use it as a context manager."""
    return TestClient(app, client=(CLIENT_IP, 50_000))


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the API; the client keeps the session cookie. Returns the session token."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    assert client.cookies.get("patron_session") == response.json()["token"]
    return str(response.json()["token"])


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def member_key_of(runtime: Runtime, customer_id: str) -> str:
    with runtime.store.session() as sess:
        key = sess.scalar(
            select(MemberIdentity.member_key).where(
                MemberIdentity.source == "online-retail", MemberIdentity.source_id == customer_id
            )
        )
    assert key is not None, customer_id
    return key


@pytest.fixture(scope="module")
def api_app(retail: Runtime) -> FastAPI:
    return create_app(retail)


@pytest.fixture(scope="module")
def operators(retail: Runtime) -> dict[str, str]:
    """Username per role, unique to the module."""
    tag = secrets.token_hex(4)
    names: dict[str, str] = {}
    for role in ROLES:
        names[role] = f"{role}-{tag}"
        create_operator(retail.store, OperatorCreate(username=names[role], password=PASSWORD, role=role))
    return names


@pytest.fixture(scope="module")
def clients(api_app: FastAPI, operators: dict[str, str]) -> Iterator[dict[str, TestClient]]:
    """A client per role, signed in with its session cookie."""
    with ExitStack() as stack:
        signed_in: dict[str, TestClient] = {}
        for role, username in operators.items():
            client = stack.enter_context(new_client(api_app))
            sign_in(client, username)
            signed_in[role] = client
        yield signed_in
