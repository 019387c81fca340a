"""The serving routes' filters: checked once per query string as FastAPI checks them, and still documented."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from patron.api.app import create_app
from patron.api.routers import recs as routes
from patron.errors import ValidationError
from patron.recs.rules import RecRequest
from patron.runtime import Runtime
from tests.conftest import make_settings

FILTERS = {
    "categories",
    "exclude_categories",
    "price_min",
    "price_max",
    "exclude",
    "whitelist",
    "exclude_purchased",
    "diversity",
    "k",
    "page",
}


def _filters(query: str) -> RecRequest:
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})
    # a thread of its own: a session-wide Playwright browser keeps an event loop running on the main thread
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, routes._filters(request)).result()


def test_a_query_string_is_checked_once_and_its_rules_kept() -> None:
    first = _filters("placement=home&k=7&price_max=20&categories=a&categories=b&unit_id=x")
    assert first == RecRequest(k=7, price_max=20.0, categories=["a", "b"])
    assert _filters("placement=home&k=7&price_max=20&categories=a&categories=b&unit_id=x") is first
    assert _filters("") == RecRequest()
    assert _filters("exclude_purchased=false&diversity=0.5&page=2").model_dump() == {
        **RecRequest().model_dump(),
        "exclude_purchased": False,
        "diversity": 0.5,
        "page": 2,
    }


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("k=0", ("query", "k")),
        ("k=ten", ("query", "k")),
        ("page=101", ("query", "page")),
        ("diversity=2", ("query", "diversity")),
        ("price_min=-1", ("query", "price_min")),
        ("exclude_purchased=maybe", ("query", "exclude_purchased")),
        ("&".join(["exclude=x"] * 201), ("query", "exclude")),
    ],
)
def test_bad_filters_are_refused_every_time_with_the_field(query: str, loc: tuple[str, str]) -> None:
    for _ in range(2):  # a refusal is not kept as if it were valid
        with pytest.raises(RequestValidationError) as caught:
            _filters(query)
        assert [tuple(e["loc"]) for e in caught.value.errors()] == [loc]


def test_an_upside_down_price_range_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        _filters("price_min=9&price_max=1")
    assert caught.value.field == "query.price_min"


def test_the_routes_still_document_every_filter(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path / "home"))
    try:
        schema = create_app(runtime).openapi()
    finally:
        runtime.close()
    for path in ("/members/{member_key}", "/items/{item_id}/similar", "/items/{item_id}/bought-together"):
        parameters = {p["name"]: p for p in schema["paths"][f"/api/v1/recs{path}"]["get"]["parameters"]}
        assert FILTERS | {"placement"} <= set(parameters)
        assert all(parameters[name]["in"] == "query" for name in FILTERS)
        k = parameters["k"]["schema"]
        assert (k["type"], k["minimum"], k["maximum"], k["default"]) == ("integer", 1, 200, 10)
        assert parameters["categories"]["schema"]["anyOf"][0] == {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 200,
        }
