"""Promotions over HTTP: templates, coupons through their life, idempotency keys, pricing, rewards.

Uses a fresh store per test (SQLite, or PostgreSQL with PATRON_TEST_DATABASE_URL).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from patron.api.app import create_app
from patron.audit.models import AuditEntry
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.loyalty import ledger
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, new_client, sign_in

API = "/api/v1"
TIERS = {"tiers": [{"threshold": "200", "discount": "20"}, {"threshold": "300", "discount": "40"}]}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """A marketer (loyalty:write and loyalty:manage) signed in to the app over the test store."""
    create_operator(runtime.store, OperatorCreate(username="marketer", password=PASSWORD, role="marketer"))
    with new_client(create_app(runtime)) as signed_in:
        sign_in(signed_in, "marketer")
        yield signed_in


def member() -> str:
    return "m" + secrets.token_hex(8)


def test_a_coupon_is_issued_priced_reserved_redeemed_and_released(client: TestClient, runtime: Runtime) -> None:
    created = client.post(
        f"{API}/promotions/templates", json={"code": "MJ", "name": "满减", "kind": "threshold_tiers", "params": TIERS}
    )
    assert created.status_code == 201, created.text
    buyer = member()
    issued = client.post(f"{API}/coupons/issue", json={"template_code": "MJ", "member_key": buyer, "reason": "vip"})
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    cart = {
        "lines": [
            {"line_id": "1", "product": "shoe", "unit_price": "120.00", "quantity": 1},
            {"line_id": "2", "product": "bag", "unit_price": 90, "quantity": 1},
        ],
        "member_key": buyer,
        "coupons": [code],
        "shipping_fee": "10",
    }

    priced = client.post(f"{API}/carts/price", json=cart)
    assert priced.status_code == 200, priced.text
    body = priced.json()
    assert (body["discount"], body["total"]) == ("20.00", "200.00")
    assert body["rules"][0]["message"].endswith("spend 90.00 more to save 40.00")
    assert sum(float(line["discount"]) for line in body["lines"]) == 20.0

    key = {"Idempotency-Key": "order-7-reserve"}
    reserve = {"order_reference": "order-7", "discount": body["discount"]}
    first = client.post(f"{API}/coupons/{code}/reserve", json=reserve, headers=key)
    again = client.post(f"{API}/coupons/{code}/reserve", json=reserve, headers=key)
    other = client.post(f"{API}/coupons/{code}/reserve", json={**reserve, "order_reference": "x"}, headers=key)
    assert first.status_code == 200 and first.json()["status"] == "reserved"
    assert "idempotent-replayed" not in first.headers
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "different request" in assert_problem(other, 409)["detail"]

    paid = client.post(
        f"{API}/coupons/{code}/redeem", json={"order_reference": "order-7"}, headers={"Idempotency-Key": "r7"}
    )
    cancelled = client.post(
        f"{API}/coupons/{code}/release", json={"order_reference": "order-7"}, headers={"Idempotency-Key": "c7"}
    )
    assert paid.json()["status"] == "redeemed"
    assert cancelled.json()["status"] == "released"
    mine = client.get(f"{API}/members/{buyer}/coupons").json()
    assert [(c["code"], c["status"]) for c in mine] == [(code, "released")]
    stats = {s["code"]: s for s in client.get(f"{API}/promotions/stats").json()}
    assert (stats["MJ"]["issued"], stats["MJ"]["released"], stats["MJ"]["used"]) == (1, 1, 0)
    with runtime.store.session() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"promotion.create", "coupon.issue", "coupon.reserve", "coupon.redeem", "coupon.release"} <= actions


def test_a_write_without_an_idempotency_key_is_422_naming_the_header(client: TestClient) -> None:
    response = client.post(f"{API}/coupons/ABC/reserve", json={"order_reference": "o", "discount": "1"})

    problem = assert_problem(response, 422)
    assert ["header", "Idempotency-Key"] in [error["loc"] for error in problem["errors"]]


def test_bad_templates_are_422_naming_the_field_and_a_used_code_is_409(client: TestClient) -> None:
    bad = client.post(
        f"{API}/promotions/templates", json={"code": "P", "name": "p", "kind": "percent", "params": {"percent": 0}}
    )
    ok = client.post(f"{API}/promotions/templates", json={"code": "P", "name": "p", "kind": "free_shipping"})
    twice = client.post(f"{API}/promotions/templates", json={"code": "P", "name": "p", "kind": "free_shipping"})
    patched = client.patch(f"{API}/promotions/templates/P", json={"params": {"max_shipping": "abc"}})

    errors = assert_problem(bad, 422)["errors"]
    assert any(e["loc"] == ["body", "params"] and "params.percent" in e["msg"] for e in errors)
    assert ok.status_code == 201
    assert_problem(twice, 409)
    assert ["params", "max_shipping"] in [e["loc"] for e in assert_problem(patched, 422)["errors"]]


def test_codes_in_bulk_and_a_reward_exchange(client: TestClient, runtime: Runtime) -> None:
    client.post(
        f"{API}/promotions/templates", json={"code": "R5", "name": "r", "kind": "fixed", "params": {"amount": 5}}
    )
    batch = client.post(f"{API}/promotions/templates/R5/codes", json={"count": 50, "prefix": "DB"})
    reward = client.post(
        f"{API}/rewards",
        json={"name": "5 off", "kind": "coupon", "points_cost": 100, "template_code": "R5", "stock": 1},
    )
    buyer = member()
    with runtime.store.session() as session:
        ledger.earn(
            session,
            member_key=buyer,
            points=500,
            source="test",
            reference="seed",
            expires_at=None,
            pending_until=None,
            actor="test",
        )
    rid = reward.json()["id"]

    first = client.post(f"{API}/rewards/{rid}/exchange", json={"member_key": buyer}, headers={"Idempotency-Key": "x1"})
    replay = client.post(f"{API}/rewards/{rid}/exchange", json={"member_key": buyer}, headers={"Idempotency-Key": "x1"})
    sold_out = client.post(
        f"{API}/rewards/{rid}/exchange", json={"member_key": buyer}, headers={"Idempotency-Key": "x2"}
    )

    assert batch.status_code == 201 and batch.json()["count"] == 50
    assert all(code.startswith("DB") for code in batch.json()["codes"])
    assert first.status_code == 201 and first.json()["stock_left"] == 0 and first.json()["coupon_code"]
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert "out of stock" in assert_problem(sold_out, 409)["detail"]
    assert client.get(f"{API}/rewards").json()[0]["exchanged"] == 1
    assert client.patch(f"{API}/rewards/{rid}", json={"stock": 3}).json()["stock"] == 3


def test_an_analyst_reads_but_may_not_issue(runtime: Runtime) -> None:
    create_operator(runtime.store, OperatorCreate(username="analyst", password=PASSWORD, role="analyst"))
    with new_client(create_app(runtime)) as analyst:
        sign_in(analyst, "analyst")
        listed = analyst.get(f"{API}/promotions/templates")
        refused = analyst.post(f"{API}/coupons/issue", json={"template_code": "X", "member_key": member()})

    assert listed.status_code == 200
    assert "loyalty:write" in assert_problem(refused, 403)["detail"]


def test_an_order_checks_out_holds_its_automatic_promotion_and_gives_it_back(
    client: TestClient, runtime: Runtime
) -> None:
    client.post(
        f"{API}/promotions/templates",
        json={"code": "AUTO5", "name": "5 off", "kind": "fixed", "params": {"amount": 5}, "automatic": True,
              "global_limit": 1},
    )  # fmt: skip
    cart = {"lines": [{"line_id": "1", "product": "shoe", "unit_price": "50", "quantity": 1}], "member_key": member()}

    def checkout(order: str, key: str) -> Response:
        return client.post(
            f"{API}/carts/checkout", json={**cart, "order_reference": order}, headers={"Idempotency-Key": key}
        )

    first = checkout("o-1", "k-1")
    replay = checkout("o-1", "k-1")
    second = checkout("o-2", "k-2")  # the only use is taken: priced without it
    twice = checkout("o-1", "k-3")

    assert first.status_code == 200, first.text
    assert first.json()["cart"]["total"] == "45.00"
    assert [(u["template_code"], u["coupon_code"], u["status"]) for u in first.json()["uses"]] == [
        ("AUTO5", None, "reserved")
    ]
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert (second.json()["cart"]["total"], second.json()["uses"]) == ("50.00", [])
    assert "holds promotions already" in assert_problem(twice, 409)["detail"]
    paid = client.post(
        f"{API}/orders/promotions/redeem", json={"order_reference": "o-1"}, headers={"Idempotency-Key": "p1"}
    )
    assert [u["status"] for u in paid.json()["uses"]] == ["redeemed"]
    cancelled = client.post(
        f"{API}/orders/promotions/release", json={"order_reference": "o-1"}, headers={"Idempotency-Key": "c1"}
    )
    assert [u["status"] for u in cancelled.json()["uses"]] == ["released"]
    listed = client.get(f"{API}/orders/promotions", params={"order_reference": "o-1"})
    assert listed.json() == cancelled.json()
    templates = {t["code"]: t for t in client.get(f"{API}/promotions/templates").json()}
    assert (templates["AUTO5"]["used"], float(templates["AUTO5"]["spent"])) == (0, 0.0)
    assert checkout("o-3", "k-4").json()["cart"]["total"] == "45.00"  # the use came back
    with runtime.store.session() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"cart.checkout", "order.redeem", "order.release"} <= actions
