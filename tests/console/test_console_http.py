"""Console behaviour over HTTP (no browser): CSRF, redirects, language, escaping, empty state."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console import rendering
from patron.console.routes import safe_next
from patron.runtime import Runtime
from tests.console.conftest import PASSWORD

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def _token(client: TestClient, path: str = "/login") -> str:
    found = _TOKEN.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def _sign_in(client: TestClient, username: str = "admin") -> None:
    form = {"username": username, "password": PASSWORD, "csrf_token": _token(client)}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.fixture
def empty_client(runtime: Runtime) -> Iterator[TestClient]:
    """A console over a data directory with no build yet, signed in as admin."""
    create_operator(runtime.store, OperatorCreate(username="admin", password=PASSWORD, role="admin"))
    with TestClient(create_app(runtime)) as client:
        _sign_in(client)
        yield client


@pytest.fixture
def client(built_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(built_runtime)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/members?q=1&page=2", "/members?q=1&page=2"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example", "/"),
        ("members", "/"),
        ("/login?next=/", "/"),
        ("/logout", "/"),
    ],
)
def test_only_relative_next_paths_are_followed(candidate: str | None, expected: str) -> None:
    assert safe_next(candidate) == expected


@pytest.mark.slow
def test_login_redirect_ignores_absolute_next(client: TestClient) -> None:
    form = {"username": "admin", "password": PASSWORD, "csrf_token": _token(client), "next": "https://evil.example/"}
    response = client.post("/login", data=form, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("patron_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session


@pytest.mark.slow
def test_pages_redirect_to_login_with_next(client: TestClient) -> None:
    response = client.get("/members?q=12346&page=2", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmembers%3Fq%3D12346%26page%3D2"


@pytest.mark.slow
def test_posts_without_a_valid_token_are_forbidden(client: TestClient) -> None:
    form = {"username": "admin", "password": PASSWORD}
    assert client.post("/login", data=form).status_code == 403
    _token(client)  # the browser now holds a nonce; a token for another nonce must still fail
    assert client.post("/login", data={**form, "csrf_token": "a" * 64}).status_code == 403
    _sign_in(client)
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
    assert client.post("/logout", data={"csrf_token": _token(client, "/")}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.slow
def test_language_cookie_lasts_a_year_and_unknown_codes_are_refused(client: TestClient) -> None:
    response = client.get("/lang/zh-CN?next=/members", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/members"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("patron_lang=zh-CN;") and "Max-Age=31536000" in cookie
    assert client.get("/lang/zh-CN?next=//evil.example", follow_redirects=False).headers["location"] == "/"
    assert client.get("/lang/fr", follow_redirects=False).status_code == 404
    assert '<html lang="zh-CN">' in client.get("/login").text


@pytest.mark.slow
def test_member_data_and_search_terms_are_escaped(client: TestClient) -> None:
    _sign_in(client)
    response = client.get("/members", params={"q": '<script>alert("x")</script>'})

    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.slow
def test_no_inline_executable_scripts(client: TestClient) -> None:
    _sign_in(client)
    html = client.get("/").text

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    for attributes, body in scripts:
        assert 'type="application/json"' in attributes or (body.strip() == "" and "src=" in attributes)
    assert '<script type="application/json" id="dashboard-data">' in html


@pytest.mark.slow
def test_dashboard_without_vendor_file_shows_a_message(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendering, "vendor_available", lambda: False)
    _sign_in(client)
    html = client.get("/").text

    assert "echarts.min.js" not in html
    assert "Charts are unavailable" in html
    assert 'data-kpi="gmv"' in html


@pytest.mark.slow
def test_unknown_member_and_bad_key_are_not_found(client: TestClient) -> None:
    _sign_in(client)
    assert client.get("/members/m0000000000000000").status_code == 404
    assert client.get("/members/not-a-key").status_code == 404
    assert client.get("/members?page=abc&sort=nope&segment=nope").status_code == 200


@pytest.mark.slow
def test_console_does_not_shadow_the_api(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert all(path.startswith("/api/v1") or path == "/health" for path in paths)


def test_pages_explain_how_to_build_when_nothing_is_built(empty_client: TestClient) -> None:
    for path in ("/", "/members", "/members/m0123456789abcdef"):
        response = empty_client.get(path)
        assert response.status_code == 200, path
        assert "No profiles built yet: run patron build" in response.text, path
