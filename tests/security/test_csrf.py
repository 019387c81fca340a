"""Every console form carries a valid CSRF token, and every console POST refuses a request without one.

The POST routes and the pages are read from the app itself, so a form or a
route added later is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from patron.console.csrf import CSRF_COOKIE, token_for
from tests.security.conftest import PASSWORD, Shop


class Forms(HTMLParser):
    """The POST forms of a page: their action and the value of their csrf_token field."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and (found.get("method") or "get").lower() == "post":
            self._open = {"action": found.get("action"), "token": None}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and found.get("name") == "csrf_token":
            self._open["token"] = found.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route of the app, through the routers it includes."""
    for route in routes:
        included = getattr(route, "effective_candidates", None)
        if included is not None:
            yield from _routes(included())
        else:
            yield route


def _console_routes(app: FastAPI, method: str) -> list[str]:
    internal = ("/api/", "/openapi.json", "/docs/", "/health", "/static")
    return sorted(
        route.path
        for route in _routes(app.routes)
        if method in (getattr(route, "methods", None) or ()) and not route.path.startswith(internal)
    )


def _filled(path: str, shop: Shop) -> str:
    values = {"member_key": shop.plain_member, "code": "en"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def _signed_in(app: FastAPI) -> TestClient:
    client = TestClient(app)
    client.get("/login")
    form = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": _token(client, app)},
        follow_redirects=False,
    )
    assert form.status_code == 303, form.text
    return client


def _token(client: TestClient, app: FastAPI) -> str:
    nonce = client.cookies.get(CSRF_COOKIE)
    assert nonce, "the console sets its CSRF cookie with the first page"
    return token_for(app.state.runtime.settings, nonce)


@pytest.fixture(scope="module")
def seeded(shop: Shop, shop_app: FastAPI) -> Shop:
    """A rule tag and an alert rule, so that their delete forms show."""
    headers = {"X-API-Key": shop.admin_key}
    with TestClient(shop_app) as client:
        tag = client.post("/api/v1/tags", json={"name": "csrf-tag", "rule": "frequency > 1"}, headers=headers)
        rule = client.post(
            "/api/v1/alert-rules",
            json={"name": "csrf-rule", "metric": "gmv", "kind": "threshold", "op": "<", "value": 1},
            headers=headers,
        )
    assert tag.status_code == 201 and rule.status_code == 201, (tag.text, rule.text)
    return shop


def test_every_post_form_on_every_page_carries_the_token_of_the_browsers_cookie(
    seeded: Shop, shop_app: FastAPI
) -> None:
    pages = [_filled(p, seeded) for p in _console_routes(shop_app, "GET") if not p.startswith("/lang/")]
    seen: dict[str, list[dict[str, str | None]]] = {}
    with TestClient(shop_app) as anonymous:
        login = anonymous.get("/login")
        seen["/login (signed out)"] = _forms(login.text)
        assert all(f["token"] == _token(anonymous, shop_app) for f in seen["/login (signed out)"])
    client = _signed_in(shop_app)
    with client:
        expected = _token(client, shop_app)
        for page in pages:
            response = client.get(page)
            if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
                seen[page] = _forms(response.text)

    forms = [(page, form) for page, found in seen.items() for form in found]
    assert [(page, f["action"]) for page, f in forms if f["token"] != expected and page != "/login (signed out)"] == []
    actions = {f["action"] for _, f in forms}
    assert {"/login", "/logout", "/tags", "/tags/delete", "/alerts/rules", "/alerts/check"} <= actions
    assert any(re.fullmatch(r"/alerts/rules/\d+/delete", a or "") for a in actions)


def _forms(html: str) -> list[dict[str, str | None]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


@pytest.mark.parametrize("token", [None, "", "0" * 64], ids=["missing", "empty", "forged"])
def test_every_console_post_refuses_a_request_without_a_valid_token(
    token: str | None, seeded: Shop, shop_app: FastAPI
) -> None:
    posts = _console_routes(shop_app, "POST")
    client = _signed_in(shop_app)
    with client:
        refused = {}
        for path in posts:
            data = {} if token is None else {"csrf_token": token}
            response = client.post(_filled(path, seeded), data=data, follow_redirects=False)
            refused[path] = (response.status_code, 'data-error="csrf"' in response.text)
        still_signed_in = client.get("/api/v1/auth/me")

    assert len(posts) >= 8
    assert {path: outcome for path, outcome in refused.items() if outcome != (403, True)} == {}
    assert still_signed_in.status_code == 200  # /logout too was refused


def test_a_valid_token_from_another_browser_is_refused(seeded: Shop, shop_app: FastAPI) -> None:
    other = _signed_in(shop_app)
    with other:
        stolen = _token(other, shop_app)
    client = _signed_in(shop_app)
    with client:
        response = client.post("/tags/delete", data={"csrf_token": stolen, "name": "csrf-tag"})
        tag = client.get("/api/v1/tags/csrf-tag")

    assert response.status_code == 403 and 'data-error="csrf"' in response.text
    assert tag.status_code == 200  # not deleted
