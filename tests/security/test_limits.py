"""Rate limits (sign-in per address, requests per API key) and request-body limits."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.api.limits import RateLimiter
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.console.csrf import CSRF_COOKIE
from tests.api.conftest import assert_problem
from tests.security.conftest import PASSWORD, Shop, build_shop

ADDRESS = ("198.51.100.30", 1)
OTHER_ADDRESS = ("198.51.100.31", 1)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A shop whose app allows 3 sign-ins a minute per address, 5 requests per API key and small bodies."""
    shop = build_shop(
        tmp_path_factory.mktemp("strict") / "home",
        rate_limit_login_per_minute=3,
        rate_limit_api_key_per_second=0.01,
        rate_limit_api_key_burst=5,
        max_request_bytes=4096,
        max_upload_bytes=64 * 1024,
    )
    yield shop
    shop.runtime.close()


@pytest.fixture
def app(strict: Shop) -> FastAPI:
    """A fresh app (fresh buckets) per test."""
    return create_app(strict.runtime)


# --- the token bucket -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)

    first = [limiter.take("a") for _ in range(3)]
    refused = limiter.take("a")
    other = limiter.take("b")
    clock.now += 0.5  # one token back
    again = limiter.take("a")
    still = limiter.take("a")

    assert [d.allowed for d in first] == [True, True, True]
    assert [d.remaining for d in first] == [2, 1, 0]
    assert (refused.allowed, refused.retry_after, refused.limit) == (False, 1, 3)
    assert other.allowed and other.remaining == 2
    assert again.allowed and not still.allowed
    assert again.reset == 2  # 3 tokens missing at 2 per second


def test_the_number_of_buckets_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_buckets=100, clock=Clock())

    for n in range(1000):
        limiter.take(f"address-{n}")

    assert len(limiter) == 100


# --- sign-in per client address -----------------------------------------------------------


def test_api_sign_in_is_limited_per_address_with_retry_after(app: FastAPI) -> None:
    wrong = {"username": "analyst", "password": "not-the-password"}
    with TestClient(app, client=ADDRESS) as client, TestClient(app, client=OTHER_ADDRESS) as other:
        attempts = [client.post("/api/v1/auth/login", json=wrong) for _ in range(3)]
        limited = client.post("/api/v1/auth/login", json={"username": "analyst", "password": PASSWORD})
        elsewhere = other.post("/api/v1/auth/login", json={"username": "analyst", "password": PASSWORD})

    assert [r.status_code for r in attempts] == [401, 401, 401]
    assert [r.headers["RateLimit-Remaining"] for r in attempts] == ["2", "1", "0"]
    body = assert_problem(limited, 429)
    assert "too many sign-in attempts from this address" in body["detail"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    assert limited.headers["RateLimit-Limit"] == "3"
    assert elsewhere.status_code == 200  # another address has its own bucket


def test_console_sign_in_shares_the_address_limit_and_shows_the_page(app: FastAPI) -> None:
    with TestClient(app, client=ADDRESS) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None and client.cookies.get(CSRF_COOKIE)
        fields = {"username": "analyst", "password": "not-the-password", "csrf_token": token.group(1)}
        console = [client.post("/login", data=fields, follow_redirects=False) for _ in range(2)]
        api = client.post("/api/v1/auth/login", json={"username": "analyst", "password": "x"})
        limited = client.post("/login", data={**fields, "password": PASSWORD}, follow_redirects=False)

    assert [r.status_code for r in console] == [401, 401]
    assert api.status_code == 401  # the third attempt from this address, through the other door
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert 'data-alert="login-locked"' in limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    assert "patron_session" not in limited.cookies


# --- requests per API key -----------------------------------------------------------------


def test_each_api_key_has_its_own_bucket_with_ratelimit_headers(app: FastAPI, strict: Shop) -> None:
    other = create_api_key(
        strict.runtime.store, ApiKeyCreate(name="second", role="analyst", scopes=["members:read"]), None
    ).key
    with TestClient(app, client=ADDRESS) as client:
        started = time.monotonic()
        allowed = [client.get("/api/v1/auth/me", headers={"X-API-Key": strict.admin_key}) for _ in range(5)]
        limited = client.get("/api/v1/members", headers={"Authorization": f"Bearer {strict.admin_key}"})
        elapsed = time.monotonic() - started
        second = client.get("/api/v1/auth/me", headers={"X-API-Key": other})

    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == ["4", "3", "2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "5" for r in allowed)
    body = assert_problem(limited, 429)
    assert "'admin key' is over its rate limit" in body["detail"]
    # One token per 100 s: the refill since the first request brings the wait down by the seconds it took.
    assert 100 - math.ceil(elapsed) <= int(limited.headers["Retry-After"]) <= 100
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert second.status_code == 200 and second.headers["RateLimit-Remaining"] == "4"


def test_sessions_are_not_counted_against_api_keys(app: FastAPI) -> None:
    with TestClient(app, client=OTHER_ADDRESS) as client:
        assert client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).status_code == 200
        responses = [client.get("/api/v1/auth/me") for _ in range(8)]

    assert {r.status_code for r in responses} == {200}
    assert all("RateLimit-Limit" not in r.headers for r in responses)


# --- request bodies -----------------------------------------------------------------------


def test_a_body_over_the_declared_limit_is_413_before_anything_runs(app: FastAPI, strict: Shop) -> None:
    big = "x" * 5000
    with TestClient(app, client=ADDRESS) as client:
        declared = client.post("/api/v1/auth/login", json={"username": big, "password": big})
        keyed = client.post("/api/v1/tags", json={"name": "big", "rule": big}, headers={"X-API-Key": strict.admin_key})

    for response in (declared, keyed):
        body = assert_problem(response, 413)
        assert body["detail"] == "the request body is larger than the limit of 4,096 bytes"
    assert "RateLimit-Limit" not in declared.headers  # refused before the sign-in limit counted it


def test_a_streamed_body_is_cut_off_at_the_limit(app: FastAPI) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(100):
            yield b"x" * 1000

    with TestClient(app, client=OTHER_ADDRESS) as client:
        response = client.post("/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})

    body = assert_problem(response, 413)
    assert "4,096 bytes" in body["detail"]


def test_console_forms_are_limited_too(app: FastAPI) -> None:
    with TestClient(app, client=OTHER_ADDRESS) as client:
        response = client.post("/login", data={"username": "x" * 10_000, "password": "y"})

    assert_problem(response, 413)


def test_import_uploads_have_their_own_larger_limit(app: FastAPI, strict: Shop) -> None:
    key = {"X-API-Key": strict.admin_key}
    with TestClient(app, client=ADDRESS) as client:
        within = client.post("/api/v1/imports", content=b"a,b\n" * 5000, headers=key)  # 20 kB
        over = client.post("/api/v1/imports", content=b"a,b\n" * 20_000, headers=key)  # 80 kB

    assert_problem(within, 405)  # past the body limit; no upload route takes a POST there yet
    assert "65,536 bytes" in assert_problem(over, 413)["detail"]
