"""SQL injection through every filter, search, sort and path value of the API's reads and the console's pages.

Each string parameter of every GET operation in the OpenAPI schema gets each
payload (the other required values are valid), and every console page gets
the payloads in all of its filter fields at once. Every answer must be a 4xx
or a normal result with no database error text, searches must not widen, and
every table must keep its rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.security.conftest import PASSWORD, Shop, table_counts

PAYLOADS = (
    "' OR '1'='1",
    "1' OR 1=1 --",
    '" OR ""="',
    "'; DROP TABLE api_keys; --",
    "1; DROP TABLE profiles",
    "') UNION SELECT key_hash, NULL FROM api_keys --",
    "%' OR 1=1 --",
    "$$; DELETE FROM operators; $$",
    "\\'; SELECT pg_sleep(5); --",
    "x\x00' OR 1=1 --",
)
# What a database error would leak into an answer (never words of the payloads, which answers may quote).
DATABASE_ERRORS = re.compile(
    r"syntax error|sqlite3|psycopg|duckdb\.|OperationalError|ProgrammingError|DataError|Traceback|unrecognized token"
)
CONSOLE_FILTERS = (
    "q", "tag", "segment", "sort", "order", "period", "metric", "start", "end", "steps", "exclude", "breakdown",
    "level", "key", "page", "page_size", "window_hours", "model", "placement", "status", "kind", "due", "member_key",
)  # fmt: skip


def _strings(schema: dict[str, Any]) -> str | None:
    """'one' for a string-like parameter, 'many' for a list of strings, None otherwise."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
            return "many"
        if option.get("type") == "string" or "enum" in option or "$ref" in option:
            return "one"
    return None


def _get_parameters(app: FastAPI) -> list[tuple[str, dict[str, Any], str, str]]:
    """(path, operation, parameter name, 'one' or 'many') for every string parameter of a GET operation."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        operation = operations.get("get")
        for parameter in (operation or {}).get("parameters", []):
            kind = _strings(parameter["schema"])
            if kind and parameter["in"] in ("query", "path"):
                found.append((path, operation, parameter["name"], kind))
    return found


def _valid(shop: Shop) -> dict[str, str]:
    return {
        "member_key": shop.plain_member,
        "name": "home",
        "item_id": "generic:p1",
        "steps": "view,purchase",
        "order_reference": "o-1",
    }


def _request(path: str, operation: dict[str, Any], name: str, value: object, shop: Shop) -> tuple[str, dict[str, Any]]:
    valid = _valid(shop)
    params: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required"):
            params[parameter["name"]] = valid.get(parameter["name"], "x")
    url = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            given = value if parameter["name"] == name else valid.get(parameter["name"], "x")
            url = url.replace("{" + parameter["name"] + "}", quote(str(given), safe=""))
    if not any(p["name"] == name and p["in"] == "path" for p in operation.get("parameters", [])):
        params[name] = value
    return url, params


@pytest.fixture(scope="module")
def admin(shop: Shop, shop_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(shop_app) as client:
        client.headers["X-API-Key"] = shop.admin_key
        yield client


@pytest.mark.slow
def test_no_api_filter_or_path_value_reaches_the_database_as_sql(
    shop: Shop, shop_app: FastAPI, admin: TestClient
) -> None:
    before = table_counts(shop.runtime)
    parameters = _get_parameters(shop_app)
    bad: list[str] = []
    for payload in PAYLOADS:
        for path, operation, name, kind in parameters:
            url, params = _request(path, operation, name, [payload] if kind == "many" else payload, shop)
            response = admin.get(url, params=params)
            if response.status_code >= 500 or DATABASE_ERRORS.search(response.text):
                bad.append(f"GET {path} {name}={payload!r}: {response.status_code} {response.text[:200]}")

    assert len(parameters) >= 40, "the schema lost its filters"
    assert bad == []
    assert table_counts(shop.runtime) == before


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "\x00" not in p])
def test_searches_and_filters_do_not_widen(payload: str, shop: Shop, admin: TestClient) -> None:
    search = admin.get("/api/v1/members", params={"q": payload})
    tagged = admin.get("/api/v1/members", params={"tag": payload[:64]})
    sorted_by = admin.get("/api/v1/members", params={"sort": payload})
    audit = admin.get("/api/v1/audit", params={"action": payload[:64]})
    member = admin.get(f"/api/v1/members/{quote(payload, safe='')}")

    assert search.status_code == 200 and search.json()["total"] == 0
    assert tagged.status_code in (404, 422)
    assert sorted_by.status_code == 422
    assert audit.status_code == 200 and audit.json()["items"] == []
    assert member.status_code in (404, 422)


def test_every_declared_sort_key_in_both_orders_is_a_normal_result(shop_app: FastAPI, admin: TestClient) -> None:
    [sort] = [p for p in shop_app.openapi()["paths"]["/api/v1/members"]["get"]["parameters"] if p["name"] == "sort"]
    keys = sort["schema"]["enum"]

    answers = {
        (key, order): admin.get("/api/v1/members", params={"sort": key, "order": order, "page_size": 5}).status_code
        for key in keys
        for order in ("asc", "desc")
    }

    assert "member_key" in keys
    assert {k: status for k, status in answers.items() if status != 200} == {}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rule_tags_refuse_injected_rules(payload: str, admin: TestClient) -> None:
    validate = admin.post("/api/v1/tags/validate", json={"rule": f"frequency > 1 {payload}"})
    create = admin.post("/api/v1/tags", json={"name": "injected", "rule": f"segment == '{payload}'"})

    if "\x00" in payload:  # refused at the edge, see below
        assert validate.status_code == create.status_code == 422
        return
    assert validate.status_code == 200 and validate.json()["valid"] is False
    assert create.status_code in (201, 422)  # a quoted string is a value to compare with, never SQL
    if create.status_code == 201:
        members = admin.get("/api/v1/members", params={"tag": "injected"})
        assert members.status_code == 200 and members.json()["total"] == 0
        assert admin.delete("/api/v1/tags/injected").status_code == 200


def _console_pages(app: FastAPI) -> list[str]:
    from tests.security.test_csrf import _console_routes

    return [p for p in _console_routes(app, "GET") if "{" not in p and p not in ("/login",)]


@pytest.mark.slow
def test_no_console_filter_reaches_the_database_as_sql(shop: Shop, shop_app: FastAPI) -> None:
    before = table_counts(shop.runtime)
    bad: list[str] = []
    with TestClient(shop_app) as client:
        assert client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).status_code == 200
        pages = _console_pages(shop_app)
        for payload in PAYLOADS:
            for page in [*pages, f"/members/{shop.plain_member}"]:
                response = client.get(page, params=dict.fromkeys(CONSOLE_FILTERS, payload))
                if response.status_code >= 500 or DATABASE_ERRORS.search(response.text):
                    bad.append(f"GET {page} with {payload!r}: {response.status_code}")

    assert len(pages) >= 10
    assert bad == []
    assert table_counts(shop.runtime) == before


# --- NUL characters: no text may hold one, and PostgreSQL cannot store it ---------------------


def test_a_nul_in_a_query_or_path_value_is_422_naming_it(admin: TestClient) -> None:
    query = admin.get("/api/v1/members", params={"q": "12346\x00", "segment": "champions"})
    path = admin.get("/api/v1/tags/a%00b")

    body = query.json()
    assert query.status_code == 422 and body["errors"] == [
        {"loc": ["query", "q"], "msg": "contains a NUL character, which no text accepts"}
    ]
    assert path.status_code == 422 and path.json()["errors"][0]["loc"] == ["path"]


def test_a_nul_in_a_json_or_form_body_is_422(shop: Shop, shop_app: FastAPI, admin: TestClient) -> None:
    before = table_counts(shop.runtime)
    rule = admin.post(
        "/api/v1/alert-rules", json={"name": "a\x00b", "metric": "gmv", "kind": "threshold", "op": "<", "value": 1}
    )
    with TestClient(shop_app) as anonymous:
        login = anonymous.post("/api/v1/auth/login", json={"username": "admin\x00", "password": "x"})
        form = anonymous.post("/login", data={"username": "admin\x00", "password": "x", "csrf_token": "t"})

    for response in (rule, login, form):
        assert response.status_code == 422, response.text
        assert "NUL character" in response.json()["detail"]
    assert table_counts(shop.runtime) == before


def test_the_text_of_a_backslash_and_u0000_is_not_a_nul(admin: TestClient) -> None:
    created = admin.post(
        "/api/v1/tags", json={"name": "backslash-text", "rule": "frequency > 1", "description": "C:\\u0000 path"}
    )

    assert created.status_code == 201, created.text
    assert created.json()["description"] == "C:\\u0000 path"
    assert admin.delete("/api/v1/tags/backslash-text").status_code == 200
