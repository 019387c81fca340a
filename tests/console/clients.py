"""Helpers of the HTTP tests: a signed-in test client, form tokens, the chart data a page embeds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.runtime import Runtime
from tests.console.conftest import PASSWORD

__all__ = ["page_data", "signed_in", "token"]

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


@contextmanager
def signed_in(runtime: Runtime, username: str = "admin", language: str = "en") -> Iterator[TestClient]:
    """A test client of the app over ``runtime``, signed in as ``username``, reading ``language``."""
    with TestClient(create_app(runtime)) as client:
        client.cookies.set("patron_lang", language)
        form = {"username": username, "password": PASSWORD, "csrf_token": token(client, "/login")}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
        yield client


def token(client: TestClient, path: str = "/tags") -> str:
    """The CSRF token of the forms on ``path``."""
    found = _TOKEN.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def page_data(html: str) -> dict[str, Any]:
    found = _DATA.search(html)
    assert found is not None, "the page embeds no chart data"
    charts: dict[str, Any] = json.loads(found.group(1))["charts"]
    return charts
