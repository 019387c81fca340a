"""Recommendations honour consent through the API: withdrawn personalization falls back to trending, and back.

A small demo shop with a trained item-kNN version on the ``home`` placement;
a member with a purchase history is served personalized lists until a
support operator records the withdrawal through the consent API, then the
list everyone gets (source ``trending``) with the reason, and personalized
lists again once consent is granted. A restriction does the same. On SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from patron.analytics.artefacts import reader_for
from patron.analytics.build import build_profiles
from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.consent import cache
from patron.demo import generate_shop
from patron.ingest.service import import_batch
from patron.members.models import MemberIdentity
from patron.recs import registry
from patron.recs.registry import VariantIn
from patron.recs.service import clear_cache, configure
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, new_client, sign_in
from tests.conftest import PG_URL, _reset_postgres, make_settings

pytestmark = pytest.mark.slow

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
ROLES = ("support", "marketer", "analyst")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo shop imported and built once (its warehouse and artefacts are only read afterwards)."""
    home = tmp_path_factory.mktemp("consent-recs") / "home"
    home.mkdir(parents=True)
    runtime = Runtime(make_settings(home))
    try:
        runtime.store.migrate()
        import_batch(runtime, "demo", "demo-300-7", lambda: generate_shop(300, 7))
        build_profiles(runtime, with_models=False)
    finally:
        runtime.close()
    return home


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request: pytest.FixtureRequest, demo_home: Path) -> Iterator[tuple[Runtime, dict[str, TestClient]]]:
    """The demo shop behind an operational store of the backend, a trained version on ``home``, a client per role."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("PATRON_TEST_DATABASE_URL is not set")
        runtime = Runtime(make_settings(demo_home, database_url=PG_URL))
        runtime.store.migrate()
        _reset_postgres(runtime)
        _copy_identities(Runtime(make_settings(demo_home)), runtime)
    else:
        runtime = Runtime(make_settings(demo_home))
    clear_cache()
    cache.invalidate(runtime.store)
    version = registry.train(runtime, "itemknn", {}, "test")
    configure(runtime.store, "home", [VariantIn(name="a", version_id=version.id, share_bp=10_000)], "test", "member")
    with ExitStack() as stack:
        clients: dict[str, TestClient] = {}
        for role in ROLES:
            create_operator(runtime.store, OperatorCreate(username=f"recs-{role}", password=PASSWORD, role=role))
            clients[role] = stack.enter_context(new_client(create_app(runtime)))
            sign_in(clients[role], f"recs-{role}")
        yield runtime, clients
    clear_cache()
    runtime.close()


def _copy_identities(source: Runtime, target: Runtime) -> None:
    """The key mapping the import made, in the other backend's store (the warehouse is shared)."""
    try:
        with source.store.session() as session:
            rows = [{"member_key": k, "source": s, "source_id": i} for k, s, i in session.execute(_IDENTITIES)]
    finally:
        source.close()
    with target.store.engine.begin() as conn:
        conn.execute(insert(MemberIdentity), rows)


_IDENTITIES = select(MemberIdentity.member_key, MemberIdentity.source, MemberIdentity.source_id)


def _buyers(runtime: Runtime, count: int) -> list[str]:
    """Members with the most orders (a history the model personalizes from)."""
    profiles = reader_for(runtime.settings.artefact_dir).table("profiles")
    rows = profiles.order_by([profiles.frequency.desc(), profiles.member_key]).limit(count).to_pyarrow().to_pylist()
    return [str(row["member_key"]) for row in rows]


def _recs(client: TestClient, member: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/recs/members/{member}", params={"k": 8})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _items(served: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in served["items"]]


def test_withdrawn_personalization_falls_back_to_trending_and_comes_back(
    shop: tuple[Runtime, dict[str, TestClient]],
) -> None:
    _runtime, clients = shop
    member, other = _buyers(shop[0], 2)
    support, reader = clients["support"], clients["analyst"]

    before = _recs(reader, member)
    withdrawn = support.put(
        f"/api/v1/members/{member}/consents/personalization", json={"state": "withdrawn", "evidence": "app settings"}
    )
    fallback = _recs(reader, member)
    consents = support.get(f"/api/v1/members/{member}/consents")
    granted = support.put(f"/api/v1/members/{member}/consents/personalization", json={"state": "granted"})
    after = _recs(reader, member)
    history = support.get(f"/api/v1/members/{member}/consents/history", params={"purpose": "personalization"})

    assert before["source"] == "personalized" and before["fallback_reason"] is None
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    assert fallback["source"] == "trending" and fallback["fallback_reason"] == "consent_withdrawn"
    assert {item["reason"] for item in fallback["items"]} == {"trending"}
    assert _items(fallback) != _items(before) and len(_items(fallback)) == 8
    assert consents.json()["personalization_blocked"] == "consent_withdrawn"
    assert granted.status_code == 200 and granted.json()["allowed"] is True
    assert after["source"] == "personalized" and after["fallback_reason"] is None
    assert _items(after) == _items(before)
    assert [e["state"] for e in history.json()["items"]] == ["granted", "withdrawn"]
    assert [e["source"] for e in history.json()["items"]] == ["api", "api"]
    assert _recs(reader, other)["source"] == "personalized"  # nobody else is affected


def test_the_fallback_is_the_same_list_for_everyone(shop: tuple[Runtime, dict[str, TestClient]]) -> None:
    runtime, clients = shop
    first, second = _buyers(runtime, 4)[2:]
    for member in (first, second):
        put = clients["support"].put(f"/api/v1/members/{member}/consents/personalization", json={"state": "denied"})
        assert put.status_code == 200

    one, two = _recs(clients["analyst"], first), _recs(clients["analyst"], second)

    assert one["fallback_reason"] == two["fallback_reason"] == "consent_denied"
    assert _items(one) == _items(two)  # nothing of the member's own data shapes it


def test_a_restriction_makes_the_list_non_personalized_until_lifted(
    shop: tuple[Runtime, dict[str, TestClient]],
) -> None:
    runtime, clients = shop
    member = _buyers(runtime, 5)[4]
    support = clients["support"]

    filed = support.post("/api/v1/privacy/requests", json={"kind": "restriction", "member_key": member})
    support.post(f"/api/v1/privacy/requests/{filed.json()['id']}/execute")
    restricted = _recs(clients["analyst"], member)
    lifted = support.delete(f"/api/v1/privacy/restrictions/{member}")

    assert restricted["source"] == "trending" and restricted["fallback_reason"] == "processing_restricted"
    assert lifted.status_code == 200 and lifted.json()["reason"] == "request"
    assert _recs(clients["analyst"], member)["source"] == "personalized"


def test_marketers_read_consents_but_may_not_change_them(shop: tuple[Runtime, dict[str, TestClient]]) -> None:
    runtime, clients = shop
    member = _buyers(runtime, 1)[0]

    read = clients["marketer"].get(f"/api/v1/members/{member}/consents")
    write = clients["marketer"].put(f"/api/v1/members/{member}/consents/marketing_email", json={"state": "granted"})
    nothing = clients["support"].put(f"/api/v1/members/{member}/consents/marketing_sms", json={"state": "withdrawn"})

    assert read.status_code == 200 and {c["purpose"] for c in read.json()["consents"]} >= {"marketing_email"}
    assert "consent:write" in assert_problem(write, 403)["detail"]
    assert "nothing to withdraw" in assert_problem(nothing, 409)["detail"]
