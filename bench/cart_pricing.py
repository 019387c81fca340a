"""Cart pricing latency with 20 active promotions: the pure function, in process with the store, and over HTTP.

Run: .venv/bin/python bench/cart_pricing.py [--runs 2000] [--lines 10]

Sets up a throw-away data directory (SQLite store) with 20 active promotions of
every kind (automatic ones and coupons, exclusive groups, scopes, tiers) and
prices a cart that carries two coupons, many times; prints p50/p95/p99.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import machine, section

from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.db.base import utcnow
from patron.promotions.coupons import issue_coupon
from patron.promotions.pricing import Candidate, CartLine, MemberContext, price_cart
from patron.promotions.schemas import CartRequest, TemplateCreate
from patron.promotions.service import price
from patron.promotions.templates import create_template, promotion_of, template_row
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

CATEGORIES = ("shoes", "bags", "hats", "toys", "books")
MEMBER = "m" + "ab" * 8


def _templates() -> list[dict[str, Any]]:
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("fixed", {"amount": "10"}),
        ("percent", {"percent": "12.5", "cap": "30"}),
        (
            "threshold_tiers",
            {"tiers": [{"threshold": "200", "discount": "20"}, {"threshold": "300", "discount": "40"}]},
        ),
        ("free_shipping", {}),
        ("gift", {"product": "tote", "quantity": 1}),
    ]
    found = []
    for index in range(20):
        kind, params = kinds[index % len(kinds)]
        found.append(
            {
                "code": f"B{index:02d}",
                "name": f"bench {index}",
                "kind": kind,
                "params": params,
                "automatic": index % 4 != 0,
                "priority": index % 7,
                "exclusive": index % 3 == 0,
                "stack_group": f"g{index % 2}" if index % 3 == 0 else None,
                "categories": [CATEGORIES[index % 5]] if index % 2 else [],
                "min_spend": str(50 * (index % 4)),
                "segments": ["champions", "loyal_customers"] if index % 5 == 1 else [],
            }
        )
    return found


def _cart(lines: int, coupons: list[str]) -> dict[str, Any]:
    return {
        "lines": [
            {
                "line_id": f"{i}",
                "product": f"sku-{i}",
                "category": CATEGORIES[i % 5],
                "unit_price": f"{9.99 + 7 * i:.2f}",
                "quantity": 1 + i % 3,
            }
            for i in range(lines)
        ],
        "member_key": MEMBER,
        "segment": "champions",
        "tier": "gold",
        "coupons": coupons,
        "shipping_fee": "12.00",
    }


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    ms = [1000 * s for s in (statistics.median(samples), cuts[94], cuts[98], max(samples))]
    return f"p50 {ms[0]:.2f} ms  p95 {ms[1]:.2f} ms  p99 {ms[2]:.2f} ms  max {ms[3]:.2f} ms  ({len(samples)} runs)"


def _measure(runs: int, fn: Callable[[], object]) -> list[float]:
    for _ in range(min(50, runs)):
        fn()  # warm up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home) / "home", env="development", master_key=PLACEHOLDER_MASTER_KEY)
        runtime = Runtime(settings)
        runtime.settings.home.mkdir(parents=True)
        runtime.store.migrate()
        with runtime.store.session() as session:
            for fields in _templates():
                create_template(session, TemplateCreate.model_validate(fields), "bench")
            coupons = [issue_coupon(session, code, MEMBER, "bench").code for code in ("B00", "B04")]
            rows = [template_row(session, f"B{i:02d}") for i in range(20)]
            candidates = [Candidate(promotion_of(row)) for row in rows if row.automatic]
            candidates += [Candidate(promotion_of(rows[0]), coupons[0]), Candidate(promotion_of(rows[4]), coupons[1])]
        body = _cart(args.lines, coupons)
        request = CartRequest.model_validate(body)
        lines = [CartLine(x.line_id, x.product, x.unit_price, x.quantity, x.category, x.brand) for x in request.lines]
        member = MemberContext(MEMBER, "gold", "champions")
        now = utcnow()
        applied = price_cart(lines, candidates, member, now=now, shipping_fee=Decimal("12"))
        print(f"cart: {args.lines} lines, 20 active promotions ({len(candidates)} candidates incl. 2 coupons), "
              f"{sum(r.applied for r in applied.rules)} applied, total {applied.total}")  # fmt: skip

        with section("pure price_cart (no store)"):
            print(
                _percentiles(
                    _measure(
                        args.runs, lambda: price_cart(lines, candidates, member, now=now, shipping_fee=Decimal("12"))
                    )
                )
            )

        def in_process() -> object:
            with runtime.store.session() as session:
                return price(runtime, session, request)

        with section("in process: price() with the store (loads promotions, coupons, member usage)"):
            print(_percentiles(_measure(args.runs, in_process)))

        from fastapi.testclient import TestClient

        password = secrets.token_urlsafe(12)
        create_operator(runtime.store, OperatorCreate(username="bench", password=password, role="analyst"))
        with TestClient(create_app(runtime)) as client:
            token = client.post("/api/v1/auth/login", json={"username": "bench", "password": password}).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}

            def over_http() -> object:
                response = client.post("/api/v1/carts/price", json=body, headers=headers)
                assert response.status_code == 200, response.text
                return response

            with section("through the API: POST /api/v1/carts/price (TestClient, session auth)"):
                print(_percentiles(_measure(args.runs, over_http)))
        runtime.close()


if __name__ == "__main__":
    main()
