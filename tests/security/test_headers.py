"""Security headers on API and console responses; HSTS only over TLS; forwarding headers only from trusted proxies."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.api.security import API_CSP
from patron.errors import SettingsError
from patron.settings import get_settings
from tests.security.conftest import PASSWORD, Shop, build_shop

CLIENT = ("198.51.100.20", 40_000)  # TEST-NET-2
PROXY = "10.1.2.3"


def _client(app: FastAPI, *, client: tuple[str, int] = CLIENT, https: bool = False) -> TestClient:
    base = "https://patron.test" if https else "http://patron.test"
    return TestClient(app, base_url=base, client=client)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """An app that trusts the proxies of 10.1.0.0/16."""
    shop = build_shop(tmp_path_factory.mktemp("proxied") / "home", trusted_proxies=["10.1.0.0/16"])
    yield create_app(shop.runtime)
    shop.runtime.close()


def test_api_responses_carry_nosniff_no_framing_no_store_and_a_request_id(shop: Shop, shop_app: FastAPI) -> None:
    with _client(shop_app) as client:
        member = client.get(f"/api/v1/members/{shop.plain_member}", headers={"X-API-Key": shop.admin_key})
        health = client.get("/health")
        anonymous = client.get("/api/v1/members")

    assert member.status_code == 200 and member.json()["personal"]["name"] == "Member 3"
    for response in (member, health, anonymous):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"] == API_CSP
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP
    assert member.headers["X-Request-ID"] != health.headers["X-Request-ID"]


def test_console_pages_keep_their_own_csp_without_inline_scripts(shop_app: FastAPI) -> None:
    with _client(shop_app) as client:
        page = client.get("/login")

    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert re.search(r"<script>(?!</script>)", page.text) is None  # no inline script in the page itself


def test_static_files_may_be_cached(shop_app: FastAPI) -> None:
    with _client(shop_app) as client:
        response = client.get("/static/console.css")

    assert response.status_code == 200
    assert "Cache-Control" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_api_docs_page_may_run_only_its_own_inline_script(shop_app: FastAPI) -> None:
    with _client(shop_app) as client:
        page = client.get("/api/docs")

    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = page.headers["Content-Security-Policy"]
    script_src = csp.split("script-src ")[1].split(";")[0].split()
    assert script_src == [f"'sha256-{digest}'", "https://cdn.jsdelivr.net"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in script_src


def test_hsts_only_when_the_request_came_over_tls(shop_app: FastAPI) -> None:
    with _client(shop_app, https=True) as tls, _client(shop_app) as plain:
        secure = tls.get("/health")
        insecure = plain.get("/health")
        claimed = plain.get("/health", headers={"X-Forwarded-Proto": "https"})  # from a peer that is no proxy

    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in insecure.headers
    assert "Strict-Transport-Security" not in claimed.headers


def test_a_trusted_proxy_forwards_the_scheme_and_the_client_address(proxied: FastAPI) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50, 10.1.9.9"}
    with _client(proxied, client=(PROXY, 1)) as via_proxy:
        credentials = {"username": "admin", "password": PASSWORD}
        signed = via_proxy.post("/api/v1/auth/login", json=credentials, headers=forwarded)
        audit = via_proxy.get("/api/v1/audit", params={"action": "auth.login"}, headers=forwarded)
    with _client(proxied, client=("192.0.2.8", 1)) as direct:
        spoofed = direct.get("/health", headers=forwarded)

    assert signed.status_code == 200, signed.text
    assert signed.headers["Strict-Transport-Security"].startswith("max-age=")
    entries = audit.json()["items"]
    assert [e["source_ip"] for e in entries] == ["203.0.113.50"]  # the client, not the proxy (10.1.9.9 is one too)
    assert "Strict-Transport-Security" not in spoofed.headers


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_HOME", str(tmp_path))
    monkeypatch.setenv("PATRON_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")
    assert get_settings().trusted_proxies == ["10.0.0.1", "192.168.0.0/16"]

    monkeypatch.setenv("PATRON_TRUSTED_PROXIES", "10.0.0.1, proxy.internal")
    with pytest.raises(SettingsError, match=re.escape("'proxy.internal' is not an IP address or network")):
        get_settings()
