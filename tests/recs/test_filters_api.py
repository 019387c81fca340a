"""The serving routes' filters: checked once per query string as FastAPI checks them, and still documented."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, Header
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from patron.api.app import create_app
from patron.api.lean import LeanRoute
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


MEMBER = "m0123456789abcdef"


def _values(query: str, member_key: str = MEMBER) -> dict[str, Any]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": query.encode(),
        "headers": [],
        "path_params": {"member_key": member_key},
    }
    # a thread of its own: a session-wide Playwright browser keeps an event loop running on the main thread
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, routes.member_recs.values(Request(scope))).result()


def _filters(query: str) -> RecRequest:
    rules: RecRequest = _values(query)["rules"]
    return rules


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


def test_a_route_gets_its_declared_values_and_refuses_a_bad_path_every_time() -> None:
    values = _values("placement=pdp&k=3")
    assert values == {"member_key": MEMBER, "placement": "pdp", "rules": RecRequest(k=3)}
    assert _values("")["placement"] == "home"  # the declared default
    for _ in range(2):  # a valid query string kept does not let a bad path through
        with pytest.raises(RequestValidationError) as caught:
            _values("placement=pdp&k=3", member_key="alice")
        assert [tuple(e["loc"]) for e in caught.value.errors()] == [("path", "member_key")]


def test_every_bad_parameter_is_named_in_fastapis_order() -> None:
    with pytest.raises(RequestValidationError) as caught:
        _values("k=0&placement=Bad!", member_key="alice")
    locs = [tuple(e["loc"]) for e in caught.value.errors()]
    assert locs == [("query", "k"), ("path", "member_key"), ("query", "placement")]


def _opened(k: int = 1) -> Iterator[int]:  # a dependency with a clean-up step (module level: annotations are text)
    yield k


def test_declarations_a_lean_route_cannot_check_are_refused() -> None:
    async def needs_header(runtime: Runtime, agent: Annotated[str, Header()]) -> None: ...

    async def needs_body(runtime: Runtime, rules: RecRequest) -> None: ...

    async def no_runtime(k: int = 1) -> None: ...

    async def needs_generator(runtime: Runtime, k: Annotated[int, Depends(_opened)]) -> None: ...

    cases = ((needs_header, "header"), (needs_body, "body"), (no_runtime, "runtime"), (needs_generator, "generator"))
    for impl, what in cases:
        with pytest.raises(TypeError, match=what):
            LeanRoute("/x", "recs:read", impl)
