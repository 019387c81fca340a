"""The cohorts, funnels and segments pages over HTTP: access, numbers, bad parameters, empty states."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.analytics.artefacts import reader_for
from patron.analytics.funnel import Step
from patron.analytics.service import funnel_report
from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console import rendering
from patron.console.i18n import Translator
from patron.runtime import Runtime
from tests.conftest import REFERENCE_SEGMENTS
from tests.console.conftest import PASSWORD

PAGES = ("/cohorts", "/funnels", "/segments")
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)

pytestmark = pytest.mark.slow  # the session's builds


def _sign_in(client: TestClient, username: str = "admin") -> None:
    found = _TOKEN.search(client.get("/login").text)
    assert found is not None
    form = {"username": username, "password": PASSWORD, "csrf_token": found.group(1)}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def _page_data(html: str) -> dict[str, Any]:
    found = _DATA.search(html)
    assert found is not None, "the page embeds no chart data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


@pytest.fixture
def retail_client(built_runtime: Runtime) -> Iterator[TestClient]:
    """Online-retail (orders, no events), signed in as admin."""
    with TestClient(create_app(built_runtime)) as client:
        _sign_in(client)
        yield client


@pytest.fixture
def events_client(events_runtime: Runtime) -> Iterator[TestClient]:
    """The demo shop with member events, signed in as admin."""
    with TestClient(create_app(events_runtime)) as client:
        _sign_in(client)
        yield client


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(built_runtime: Runtime, path: str) -> None:
    with TestClient(create_app(built_runtime)) as client:
        response = client.get(f"{path}?period=week", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2F{path[1:]}%3Fperiod%3Dweek"


@pytest.mark.parametrize("role", ["admin", "analyst", "marketer", "support"])
def test_every_role_may_read_the_analysis_pages(built_runtime: Runtime, role: str) -> None:
    """The pages need kpis:read (cohorts, funnels) and segments:read (segments), which every role holds."""
    username = f"{role}-{secrets.token_hex(3)}"
    create_operator(built_runtime.store, OperatorCreate(username=username, password=PASSWORD, role=role))
    with TestClient(create_app(built_runtime)) as client:
        _sign_in(client, username)
        responses = {path: client.get(path) for path in PAGES}

    for path, response in responses.items():
        assert response.status_code == 200, (role, path)
        assert f'data-nav="{path[1:]}"' in response.text
        assert 'aria-current="page" data-nav' in response.text


def test_pages_explain_how_to_build_when_nothing_is_built(runtime: Runtime) -> None:
    create_operator(runtime.store, OperatorCreate(username="admin", password=PASSWORD, role="admin"))
    with TestClient(create_app(runtime)) as client:
        _sign_in(client)
        responses = [client.get(path) for path in PAGES]

    for response in responses:
        assert response.status_code == 200
        assert 'data-state="no-build"' in response.text
        assert "No profiles built yet: run patron build" in response.text


# --- cohorts ----------------------------------------------------------------------------------


def test_cohorts_table_and_chart_data(retail_client: TestClient) -> None:
    html = retail_client.get("/cohorts").text

    data = _page_data(html)["charts"]
    heatmap = data["cohort-heatmap"]
    assert heatmap["cohorts"][0] == "2010-12" and len(heatmap["cohorts"]) == 13
    december = [p for p in heatmap["points"] if p[1] == 0]
    assert december[0] == [0, 0, 1.0, 885]  # index 0 of the December 2010 cohort: all its 885 members
    assert re.search(
        r'<tr data-cohort="2010-12">\s*<th scope="row" class="mono">2010-12</th>\s*<td class="num">885</td>', html
    )
    assert sum(data["interval-chart"]["counts"]) == int(re.sub(r"\D", "", _stat(html, "intervals")))
    assert 'data-since="2010-12-01"' in html


def _stat(html: str, key: str) -> str:
    found = re.search(rf'data-stat="{key}"><dt>[^<]*</dt><dd>([^<]*)</dd>', html)
    assert found is not None
    return found.group(1)


def test_cohort_selectors_not_understood_fall_back_with_a_message(retail_client: TestClient) -> None:
    english = retail_client.get("/cohorts", params={"period": "day", "metric": "<b>profit</b>"})
    retail_client.cookies.set("patron_lang", "zh-CN")
    chinese = retail_client.get("/cohorts", params={"period": "day"})

    assert english.status_code == 200
    assert "Cohort period: “day” is not a valid choice, so the default is shown." in english.text
    assert "Measure: “&lt;b&gt;profit&lt;/b&gt;” is not a valid choice" in english.text
    assert '<option value="month" selected>' in english.text
    zh = Translator("zh-CN")
    assert zh("form.ignored", field=zh("cohorts.period_label"), value="day") in chinese.text
    assert zh("cohorts.period_label") == "同期群周期"


# --- funnels ----------------------------------------------------------------------------------


def test_funnel_numbers_are_the_services(events_client: TestClient, events_runtime: Runtime) -> None:
    params = [("step", "view"), ("step", "cart"), ("step", "purchase"), ("window", "72"), ("order", "any")]
    params += [("breakdown", "segment"), ("exclude", "fav")]
    html = events_client.get("/funnels", params=params).text

    steps = [Step("view"), Step("cart"), Step("purchase")]
    report = funnel_report(
        reader_for(events_runtime.settings.artefact_dir), steps, timedelta(hours=72), "any", [Step("fav")], "segment"
    )
    charts = _page_data(html)["charts"]
    assert charts["funnel-chart"]["members"] == [s.members for s in report.overall]
    assert charts["funnel-chart"]["steps"] == ["View", "Add to cart", "Purchase"]
    rows = re.findall(r'<tr data-group="([^"]*)">', html)
    assert rows == [("other" if g.other else g.value or "") for g in report.groups]
    assert len(charts["breakdown-chart"]["groups"]) == min(8, len(report.groups))
    assert 'data-exclusions="Favourite"' in html
    assert '<option value="72" selected>3 d</option>' in html


def test_a_step_narrowed_in_the_address_bar_is_kept_in_the_form(events_client: TestClient) -> None:
    response = events_client.get("/funnels", params=[("step", "view:category=books"), ("step", "purchase")])

    assert response.status_code == 200
    assert '<option value="view:category=books" selected>view:category=books</option>' in response.text
    assert _page_data(response.text)["charts"]["funnel-chart"]["steps"] == ["View · category=books", "Purchase"]


def test_a_step_that_is_not_a_step_is_refused_with_a_message(events_client: TestClient) -> None:
    response = events_client.get("/funnels", params=[("step", "view"), ("step", "<script>x</script>")])
    exclusion = events_client.get("/funnels", params={"exclude": "fav:colour=red"})

    assert response.status_code == 422
    assert "“&lt;script&gt;x&lt;/script&gt;” is not a step" in response.text
    assert "<script>x" not in response.text
    assert 'data-form="funnel"' in response.text  # the form stays usable
    assert 'id="page-data"' not in response.text
    assert exclusion.status_code == 422
    assert "“fav:colour=red” is not a step" in exclusion.text


def test_funnel_options_not_understood_fall_back_with_a_message(events_client: TestClient) -> None:
    response = events_client.get("/funnels", params={"window": "-3", "order": "sideways", "breakdown": "gender"})

    assert response.status_code == 200
    for message in (
        "Conversion window: “-3” is not a valid choice",
        "Step order: “sideways” is not a valid choice",
        "Break down by: “gender” is not a valid choice",
    ):
        assert message in response.text
    assert _page_data(response.text)["charts"]["funnel-chart"]["members"][0] > 0


def test_funnels_without_events_say_so(retail_client: TestClient) -> None:
    response = retail_client.get("/funnels")

    assert response.status_code == 200
    assert 'data-state="no-events"' in response.text
    assert "No behaviour events in this shop" in response.text
    assert "echarts.min.js" not in response.text


# --- segments ---------------------------------------------------------------------------------


def test_segment_rows_link_to_their_members(retail_client: TestClient) -> None:
    html = retail_client.get("/segments").text

    counts = dict(
        re.findall(
            r'<tr data-segment-row="(\w+)">\s*<td><a [^>]*>[^<]*</a></td>\s*<td class="num" data-members="(\d+)"', html
        )
    )
    assert {k: int(v) for k, v in counts.items()} == REFERENCE_SEGMENTS
    for segment in REFERENCE_SEGMENTS:
        assert f'href="/members?segment={segment}" data-members-link="{segment}"' in html
    treemap = _page_data(html)["charts"]["segment-treemap"]
    assert {node["key"]: node["value"] for node in treemap["nodes"]} == REFERENCE_SEGMENTS
    assert all(node["href"] == f"/members?segment={node['key']}" for node in treemap["nodes"])


def test_segment_measure_not_understood_falls_back(retail_client: TestClient) -> None:
    response = retail_client.get("/segments", params={"measure": "profit"})

    assert response.status_code == 200
    assert "Size by: “profit” is not a valid choice" in response.text
    assert _page_data(response.text)["charts"]["segment-treemap"]["measure"] == "members"


@pytest.mark.parametrize("path", PAGES)
def test_no_inline_executable_scripts(events_client: TestClient, path: str) -> None:
    html = events_client.get(path).text

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'type="application/json"' in attributes or (body.strip() == "" and "src=" in attributes)


@pytest.mark.parametrize("path", PAGES)
def test_without_the_chart_library_the_pages_say_so(
    events_client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(rendering, "vendor_available", lambda: False)
    html = events_client.get(path).text

    assert "echarts.min.js" not in html
    assert "Charts are unavailable" in html
    assert 'data-table="' in html  # the tables still carry the figures
