"""Script injection through members' names and regions, search terms and rule names shown in the console.

Two members of the shop are named ``<script>alert(1)</script>`` and
``"><img src=x onerror=alert(1)>`` and live in regions that carry script too.
The HTML must hold them escaped, and Chromium must show them as text without
ever opening a dialog.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.console.conftest import _serve
from tests.security.conftest import (
    ATTRIBUTE_NAME,
    ATTRIBUTE_REGION,
    PASSWORD,
    SCRIPT_NAME,
    SCRIPT_REGION,
    Shop,
)

HOSTILE = (SCRIPT_NAME, ATTRIBUTE_NAME, SCRIPT_REGION, ATTRIBUTE_REGION)
SEARCH = "<script>alert(3)</script>"
TAG = '"><svg onload=alert(4)>'
RULE_NAME = "<img src=x onerror=alert(5)>"


def _admin(app: FastAPI) -> TestClient:
    client = TestClient(app)
    response = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


def _assert_escaped(page: str, *values: str) -> None:
    for value in values:
        assert value not in page, f"{value!r} reached the page unescaped"
        assert str(escape(value)) in page, f"{value!r} is not shown"


@pytest.fixture(scope="module")
def alert_rule(shop: Shop, shop_app: FastAPI) -> str:
    with TestClient(shop_app) as client:
        created = client.post(
            "/api/v1/alert-rules",
            json={"name": RULE_NAME, "metric": "gmv", "kind": "threshold", "op": "<", "value": 1},
            headers={"X-API-Key": shop.admin_key},
        )
    assert created.status_code == 201, created.text
    return RULE_NAME


def test_member_pages_escape_names_and_regions(shop: Shop, shop_app: FastAPI) -> None:
    with _admin(shop_app) as client:
        script = client.get(f"/members/{shop.script_member}")
        attribute = client.get(f"/members/{shop.attribute_member}")

    assert script.status_code == attribute.status_code == 200
    _assert_escaped(script.text, SCRIPT_NAME)
    _assert_escaped(attribute.text, ATTRIBUTE_NAME)
    assert "<img src=x" not in attribute.text


def test_the_members_list_escapes_regions_and_reflected_filters(shop_app: FastAPI) -> None:
    with _admin(shop_app) as client:
        listing = client.get("/members", params={"sort": "monetary", "order": "asc", "page_size": 50})
        reflected = client.get("/members", params={"q": SEARCH, "tag": TAG})

    assert listing.status_code == 200
    _assert_escaped(listing.text, SCRIPT_REGION, ATTRIBUTE_REGION)
    assert reflected.status_code == 200
    assert SEARCH not in reflected.text and TAG not in reflected.text
    assert str(escape(SEARCH)) in reflected.text


def test_the_alerts_page_escapes_rule_names(alert_rule: str, shop_app: FastAPI) -> None:
    with _admin(shop_app) as client:
        page = client.get("/alerts")

    assert page.status_code == 200
    _assert_escaped(page.text, alert_rule)


def test_the_api_returns_names_as_json_data_only(shop: Shop, shop_app: FastAPI) -> None:
    with TestClient(shop_app) as client:
        response = client.get(f"/api/v1/members/{shop.script_member}", headers={"X-API-Key": shop.admin_key})

    assert response.json()["personal"]["name"] == SCRIPT_NAME
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


# --- in Chromium ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(shop: Shop) -> Iterator[str]:
    with _serve(shop.runtime) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live, locale="en-US")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_no_dialog_fires_anywhere_the_names_are_shown(page: Page, shop: Shop, alert_rule: str) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto("/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-form=login] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)

    page.goto(f"/members/{shop.script_member}")
    expect(page.get_by_text(SCRIPT_NAME, exact=True)).to_be_visible()
    page.goto(f"/members/{shop.attribute_member}")
    expect(page.get_by_text(ATTRIBUTE_NAME, exact=True)).to_be_visible()
    assert page.locator("img[src=x]").count() == 0
    page.goto("/members?sort=monetary&order=asc&page_size=50")
    expect(page.get_by_text(SCRIPT_REGION, exact=True).first).to_be_visible()
    expect(page.get_by_text(ATTRIBUTE_REGION, exact=True).first).to_be_visible()
    page.goto(f"/members?q={quote(SEARCH)}&tag={quote(TAG)}")
    expect(page.locator("input[name=q]")).to_have_value(SEARCH)
    page.goto("/alerts")
    expect(page.get_by_text(alert_rule, exact=True).first).to_be_visible()
    page.wait_for_timeout(300)  # an onerror or onload handler would have run by now

    assert dialogs == []
    assert page.locator("svg[onload]").count() == 0
