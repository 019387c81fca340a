"""Stored rule tags over HTTP on online-retail: counts against the published segments and numpy."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from patron.analytics.artefacts import current_manifest
from patron.runtime import Runtime
from tests.api.conftest import assert_problem, member_key_of
from tests.conftest import REFERENCE_SEGMENTS

pytestmark = pytest.mark.slow


def _name(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(3)}"  # the session's store is shared between modules


def _profiles(runtime: Runtime) -> dict[str, np.ndarray]:
    manifest = current_manifest(runtime.settings.artefact_dir)
    assert manifest is not None
    table = pq.read_table(Path(manifest["path"]) / "profiles.parquet")
    return {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}


def test_segment_tag_counts_the_published_segment(clients: dict[str, TestClient]) -> None:
    marketer, name = clients["marketer"], _name("champions")
    created = marketer.post("/api/v1/tags", json={"name": name, "rule": "segment = 'champions'"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["rule"] == 'segment = "champions"'  # stored in canonical form
    assert body["members"] == REFERENCE_SEGMENTS["champions"]
    listed = {t["name"]: t["members"] for t in marketer.get("/api/v1/tags").json()}
    assert listed[name] == REFERENCE_SEGMENTS["champions"]
    page = marketer.get("/api/v1/members", params={"tag": name, "page_size": 5})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == REFERENCE_SEGMENTS["champions"]
    assert {m["segment"] for m in page.json()["items"]} == {"champions"}


def test_compound_rule_matches_an_independent_count(clients: dict[str, TestClient], retail: Runtime) -> None:
    marketer, name = clients["marketer"], _name("big-spenders")
    rule = "monetary > 1000 and (frequency >= 5 or days_since(last_order_at) <= 30) and region != 'EIRE'"
    created = marketer.post("/api/v1/tags", json={"name": name, "rule": rule, "description": "VIP candidates"})
    assert created.status_code == 201, created.text
    p = _profiles(retail)
    as_of = np.datetime64(current_manifest(retail.settings.artefact_dir)["as_of"], "D")  # type: ignore[index]
    days_since = (as_of - p["last_order_at"].astype("datetime64[D]")).astype(int)
    expected = (p["monetary"] > 1000) & ((p["frequency"] >= 5) | (days_since <= 30)) & (p["region"] != "EIRE")
    assert created.json()["members"] == int(expected.sum()) > 0


def test_member_view_lists_the_tags_the_member_carries(clients: dict[str, TestClient], retail: Runtime) -> None:
    admin, name = clients["admin"], _name("one-member")
    key = member_key_of(retail, "12346")  # a single, large, long-ago order
    assert admin.post("/api/v1/tags", json={"name": name, "rule": f"member_key = '{key}'"}).status_code == 201
    view = admin.get(f"/api/v1/members/{key}").json()
    assert name in view["tags"]
    other = member_key_of(retail, "12347")
    assert name not in admin.get(f"/api/v1/members/{other}").json()["tags"]


def test_bad_rule_is_refused_with_its_position(clients: dict[str, TestClient]) -> None:
    marketer = clients["marketer"]
    refused = marketer.post("/api/v1/tags", json={"name": _name("bad"), "rule": "monetary >= and frequency > 2"})
    problem = assert_problem(refused, 422)
    assert "position 12" in problem["detail"]
    checked = marketer.post("/api/v1/tags/validate", json={"rule": "monetary > 1 and colour = 'red'"})
    assert checked.status_code == 200
    assert checked.json()["valid"] is False
    assert checked.json()["problems"][0]["position"] == 17
    assert marketer.post("/api/v1/tags/validate", json={"rule": "frequency>2"}).json()["canonical"] == "frequency > 2"


def test_update_delete_and_permissions(clients: dict[str, TestClient]) -> None:
    analyst, support, name = clients["analyst"], clients["support"], _name("change-me")
    assert analyst.post("/api/v1/tags", json={"name": name, "rule": "frequency > 1"}).status_code == 201
    assert_problem(analyst.post("/api/v1/tags", json={"name": name, "rule": "frequency > 2"}), 409)
    changed = analyst.patch(f"/api/v1/tags/{name}", json={"rule": "frequency > 100"})
    assert changed.status_code == 200 and changed.json()["rule"] == "frequency > 100"
    assert_problem(support.post("/api/v1/tags", json={"name": _name("x"), "rule": "frequency > 1"}), 403)
    assert support.get(f"/api/v1/tags/{name}").status_code == 200  # reading is open to every role
    deleted = analyst.delete(f"/api/v1/tags/{name}")
    assert deleted.status_code == 200 and deleted.json()["name"] == name
    assert_problem(analyst.get(f"/api/v1/tags/{name}"), 404)
