"""Recommendations over HTTP on online-retail, end to end, on SQLite and PostgreSQL.

Train versions through the API, put them on placements, serve member, session,
similar and bought-together lists with filters and reasons, fold feedback in,
split a placement 50/50, record events, compare the variants and roll back.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.recs import service
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, member_key_of, new_client, sign_in
from tests.conftest import PG_URL, _reset_postgres, make_settings

pytestmark = pytest.mark.slow

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class Shop:
    """A backend's clients, its trained versions and a unique suffix for placement names."""

    def __init__(self, runtime: Runtime, clients: dict[str, TestClient]) -> None:
        self.runtime = runtime
        self.clients = clients
        self.tag = secrets.token_hex(3)
        self.versions: dict[str, dict[str, Any]] = {}

    def name(self, stem: str) -> str:
        return f"{stem}-{self.tag}"

    def place(self, name: str, kind: str | None, **shares: int) -> dict[str, Any]:
        variants = [
            {"name": variant, "version_id": self.versions[variant]["id"], "share_bp": bp}
            for variant, bp in shares.items()
        ]
        response = self.clients["analyst"].put(
            f"/api/v1/recs/placements/{name}", json={"kind": kind, "variants": variants}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request: pytest.FixtureRequest, retail: Runtime) -> Iterator[Shop]:
    """The retail warehouse behind an operational store of the backend; two versions trained over HTTP."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("PATRON_TEST_DATABASE_URL is not set")
        runtime = Runtime(make_settings(retail.settings.home, database_url=PG_URL))
    else:
        runtime = retail
    try:
        if runtime is not retail:
            runtime.store.migrate()
            _reset_postgres(runtime)
        yield from _shop(runtime)
    finally:
        if runtime is not retail:
            runtime.close()


def _shop(runtime: Runtime) -> Iterator[Shop]:
    tag = secrets.token_hex(3)
    with ExitStack() as stack:
        clients: dict[str, TestClient] = {}
        for role in ("admin", "analyst", "marketer", "support"):
            username = f"recs-{role}-{tag}"
            create_operator(runtime.store, OperatorCreate(username=username, password=PASSWORD, role=role))
            clients[role] = stack.enter_context(new_client(create_app(runtime)))
            sign_in(clients[role], username)
        found = Shop(runtime, clients)
        for model in ("popularity", "itemknn"):
            trained = clients["analyst"].post("/api/v1/recs/versions", json={"model": model, "params": {}})
            assert trained.status_code == 201, trained.text
            found.versions[model] = trained.json()
        yield found


def _prices(retail: Runtime) -> dict[str, float]:
    """Product prices read straight from the warehouse file."""
    location = retail.settings.warehouse_location.removeprefix("duckdb:///")
    with duckdb.connect(location, read_only=True) as con:
        return {key: price for key, price in con.sql("select product_key, price from products").fetchall()}


def test_a_trained_version_is_ready_with_offline_metrics(shop: Shop) -> None:
    version = shop.versions["itemknn"]

    got = shop.clients["support"].get(f"/api/v1/recs/versions/{version['id']}")
    listed = shop.clients["support"].get("/api/v1/recs/versions", params={"model": "itemknn"}).json()

    assert version["status"] == "ready" and version["directory"]
    assert got.json()["metrics"] == version["metrics"] and version["metrics"]
    assert version["id"] in [v["id"] for v in listed]


def test_member_list_has_reasons_and_obeys_filters_and_pages(shop: Shop, retail: Runtime) -> None:
    home = shop.name("home")
    shop.place(home, "member", itemknn=10_000)
    member, support = member_key_of(retail, "17850"), shop.clients["support"]
    url = f"/api/v1/recs/members/{member}"

    ten = support.get(url, params={"placement": home, "k": 10}).json()
    second = support.get(url, params={"placement": home, "k": 5, "page": 2}).json()
    cheap = support.get(url, params={"placement": home, "k": 10, "price_max": 1.0}).json()
    without = support.get(url, params={"placement": home, "k": 10, "exclude": [ten["items"][0]["item_id"]]}).json()

    assert ten["variant"] == "itemknn" and ten["version_id"] == shop.versions["itemknn"]["id"]
    assert ten["source"] == "personalized" and len(ten["items"]) == 10 and len(ten["request_id"]) == 24
    assert all(i["reason"] in {"because_you_bought", "because_you_viewed", "for_you"} for i in ten["items"])
    assert any(i["reason"] == "because_you_bought" and i["reason_args"]["item_id"] for i in ten["items"])
    assert [i["item_id"] for i in second["items"]] == [i["item_id"] for i in ten["items"][5:]]
    prices = _prices(retail)
    assert cheap["items"] and all(prices[i["item_id"]] <= 1.0 for i in cheap["items"])
    assert ten["items"][0]["item_id"] not in [i["item_id"] for i in without["items"]]


def test_feedback_changes_a_members_list_without_a_retrain(shop: Shop) -> None:
    home = shop.name("home-fb")
    shop.place(home, "member", itemknn=10_000)
    newcomer = "m" + secrets.token_hex(8)  # a member the model has never seen
    url = f"/api/v1/recs/members/{newcomer}"
    before = shop.clients["support"].get(url, params={"placement": home}).json()
    viewed = before["items"][0]["item_id"]

    posted = shop.clients["marketer"].post(
        "/api/v1/recs/feedback", json={"member_key": newcomer, "item_id": viewed, "event_type": "view"}
    )
    after = shop.clients["support"].get(url, params={"placement": home}).json()
    bought = shop.clients["marketer"].post(
        "/api/v1/recs/feedback",
        json={"member_key": newcomer, "item_id": after["items"][0]["item_id"], "event_type": "purchase"},
    )
    later = shop.clients["support"].get(url, params={"placement": home}).json()
    service.clear_cache()  # as after a restart: the engine is loaded again and replays the stored feedback
    replayed = shop.clients["support"].get(url, params={"placement": home}).json()

    assert posted.status_code == 201, posted.text
    assert posted.json()["versions_updated"] >= 1
    assert before["source"] == "trending"
    assert after["source"] == "personalized"
    assert {i["reason"] for i in after["items"]} <= {"because_you_viewed", "for_you"}
    assert any(i["reason_args"].get("item_id") == viewed for i in after["items"])
    assert bought.status_code == 201
    assert after["items"][0]["item_id"] not in [i["item_id"] for i in later["items"]]  # bought: excluded now
    assert [i["item_id"] for i in replayed["items"]] == [i["item_id"] for i in later["items"]]


def _bucket(salt: str, placement: str, unit: str) -> int:
    """The documented bucketing, computed here independently of the service."""
    digest = hashlib.blake2b(f"{salt}\x1f{placement}\x1f{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


def test_a_50_50_split_is_deterministic_by_member_and_events_feed_the_comparison(shop: Shop) -> None:
    ab = shop.name("ab")
    placed = shop.place(ab, "member", popularity=5_000, itemknn=5_000)
    support, marketer = shop.clients["support"], shop.clients["marketer"]
    units = [f"m{n:016x}" for n in range(300)]
    served = {u: support.get(f"/api/v1/recs/members/{u}", params={"placement": ab, "k": 3}).json() for u in units}
    again = {u: support.get(f"/api/v1/recs/members/{u}", params={"placement": ab, "k": 3}).json() for u in units[:50]}

    expected = {u: "popularity" if _bucket(placed["salt"], ab, u) < 5_000 else "itemknn" for u in units}
    assert {u: s["variant"] for u, s in served.items()} == expected
    assert all(again[u]["variant"] == served[u]["variant"] for u in again)
    share = sum(v == "popularity" for v in expected.values()) / len(units)
    assert abs(share - 0.5) < 3.3 * (0.25 / len(units)) ** 0.5

    events: list[dict[str, Any]] = []
    for n, (unit, page) in enumerate(served.items()):
        for item in page["items"]:
            events.append(_ev(ab, page, unit, item["item_id"], "impression"))
        if n % 3 == 0:
            events.append(_ev(ab, page, unit, page["items"][0]["item_id"], "click"))
        if n % 7 == 0:
            events.append(_ev(ab, page, unit, page["items"][0]["item_id"], "purchase", revenue=10.0))
    first = marketer.post("/api/v1/recs/events", json={"events": events[:500]})
    rest = marketer.post("/api/v1/recs/events", json={"events": events[400:]})
    report = support.get(f"/api/v1/recs/placements/{ab}/comparison").json()

    assert first.json() == {"received": 500, "recorded": 500, "duplicates": 0}
    assert rest.json()["duplicates"] == 100
    assert report["control"] == "popularity"
    by_name = {v["variant"]: v for v in report["variants"]}
    for variant in ("popularity", "itemknn"):
        mine = [(n, u) for n, u in enumerate(units) if expected[u] == variant]
        impressions = 3 * len(mine)
        clicks = sum(n % 3 == 0 for n, _ in mine)
        converted = sum(n % 7 == 0 for n, _ in mine)
        got = by_name[variant]
        assert (got["units"], got["impressions"], got["clicks"], got["converted_units"]) == (
            len(mine),
            impressions,
            clicks,
            converted,
        )
        ci = stats.binomtest(clicks, impressions).proportion_ci(method="wilson")
        assert got["ctr"]["rate"]["low"] == pytest.approx(ci.low) and got["ctr"]["rate"]["high"] == pytest.approx(
            ci.high
        )
    assert by_name["itemknn"]["conversion"]["vs_control"]["p_value"] is not None


def _ev(placement: str, page: dict[str, Any], unit: str, item: str, kind: str, revenue: float = 0.0) -> dict[str, Any]:
    return {
        "placement": placement,
        "variant": page["variant"],
        "unit_id": unit,
        "item_id": item,
        "kind": kind,
        "revenue": revenue,
        "request_id": page["request_id"],
        "idempotency_key": f"{page['request_id']}:{kind}:{item}",
    }


def test_rollback_restores_the_previous_variants_at_once(shop: Shop, retail: Runtime) -> None:
    name = shop.name("rb")
    shop.place(name, "member", popularity=10_000)
    shop.place(name, None, itemknn=10_000)
    member = member_key_of(retail, "17850")
    url = f"/api/v1/recs/members/{member}"
    assert shop.clients["support"].get(url, params={"placement": name}).json()["variant"] == "itemknn"

    rolled = shop.clients["admin"].post(f"/api/v1/recs/placements/{name}/rollback")
    served = shop.clients["support"].get(url, params={"placement": name}).json()
    history = shop.clients["support"].get(f"/api/v1/recs/placements/{name}/history").json()
    nothing_left = shop.clients["admin"].post(f"/api/v1/recs/placements/{name}/rollback")

    assert rolled.status_code == 200, rolled.text
    assert [v["name"] for v in rolled.json()["variants"]] == ["popularity"]
    assert served["variant"] == "popularity" and served["version_id"] == shop.versions["popularity"]["id"]
    assert [(h["revision"], h["action"]) for h in history] == [(3, "rollback"), (2, "update"), (1, "create")]
    assert_problem(nothing_left, 409)


def test_session_similar_and_bought_together_lists(shop: Shop) -> None:
    for stem, kind in (("sess", "session"), ("sim", "similar"), ("bt", "bought_together")):
        shop.place(shop.name(stem), kind, itemknn=10_000)
    support = shop.clients["support"]
    item = "online-retail:85123A"

    session = support.post(
        "/api/v1/recs/sessions",
        json={"session_id": "s-1", "item_ids": [item], "placement": shop.name("sess"), "rules": {"k": 5}},
    ).json()
    similar = support.get(f"/api/v1/recs/items/{item}/similar", params={"placement": shop.name("sim")}).json()
    together = support.get(f"/api/v1/recs/items/{item}/bought-together", params={"placement": shop.name("bt")}).json()

    assert session["source"] == "session" and len(session["items"]) == 5
    assert item not in [i["item_id"] for i in session["items"]]
    assert similar["items"] and {i["reason"] for i in similar["items"]} == {"similar_to"}
    assert all(i["reason_args"]["item_id"] == item for i in similar["items"])
    assert together["items"] and {i["reason"] for i in together["items"]} == {"bought_together"}
    assert item not in [i["item_id"] for i in together["items"] + similar["items"]]


def test_serving_errors_are_problems(shop: Shop, retail: Runtime) -> None:
    support, analyst = shop.clients["support"], shop.clients["analyst"]
    member = member_key_of(retail, "17850")
    shop.place(shop.name("kind"), "similar", popularity=10_000)

    missing = support.get(f"/api/v1/recs/members/{member}", params={"placement": shop.name("nowhere")})
    wrong_kind = support.get(f"/api/v1/recs/members/{member}", params={"placement": shop.name("kind")})
    unknown_item = support.get("/api/v1/recs/items/nope/similar", params={"placement": shop.name("kind")})
    ghost = analyst.put(
        f"/api/v1/recs/placements/{shop.name('ghost')}",
        json={"kind": "member", "variants": [{"name": "a", "version_id": "ghost", "share_bp": 10_000}]},
    )
    unknown_model = analyst.post("/api/v1/recs/versions", json={"model": "crystal_ball"})

    assert_problem(missing, 404)
    assert assert_problem(wrong_kind, 422)["errors"][0]["loc"] == ["placement"]
    assert_problem(unknown_item, 404)
    assert assert_problem(ghost, 422)["errors"][0]["loc"] == ["variants", "0", "version_id"]
    assert assert_problem(unknown_model, 422)["errors"][0]["loc"] == ["model"]
