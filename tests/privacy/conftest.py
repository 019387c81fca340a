"""A small shop with one member whose every kind of data Patron holds, with values nobody else has.

The demo generator supplies the other members; the member itself arrives as
a real shop's would, through generic imports (members, products, orders,
lines, events) that also quarantine rows holding their personal values. Then
the operational side is filled in: points (available and pending), a tier,
coupons (one unused, one redeemed), consents, recommendation feedback and
events.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from patron.analytics.build import build_profiles
from patron.consent.service import set_consent
from patron.demo import generate_shop
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.ingest.service import import_batch, run_import
from patron.loyalty.earning import OrderIn, OrderLineIn
from patron.loyalty.ledger_schemas import EarnRequest
from patron.loyalty.ledger_service import earn_points
from patron.loyalty.program import record_order
from patron.loyalty.program_rules import EarningRuleCreate, create_rule
from patron.loyalty.tiers import TierCreate, create_tier
from patron.members.identity import member_key_of
from patron.promotions.coupons import issue_coupon, redeem_coupon, reserve_coupon
from patron.promotions.schemas import TemplateCreate
from patron.promotions.templates import create_template
from patron.recs.service import FeedbackIn, record_feedback
from patron.recs.tracking import EventIn, record_events
from patron.runtime import Runtime

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report, so the browser test's fixture can screenshot a failure."""
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


# Values no generated member can have: the proof of erasure searches every store for them.
PERSON = {
    "name": "Zephyrine Quillfeather-Osei",
    "email": "zq.osei+erasure@example.org",
    "phone": "+44 7700 900123",
    "address": "17 Larkspur Mews, Hollowbrook",
    "birthday": "1987-03-29",
}
SOURCE_ID = "P-7781"


@dataclass
class PersonShop:
    runtime: Runtime
    member_key: str
    other_key: str
    points: int  # what the member holds: available plus pending
    coupons: dict[str, str]  # code -> status


def _import(runtime: Runtime, directory: Path, name: str, rows: list[str], mapping: dict[str, Any]) -> None:
    data = directory / f"{name}.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    run_import(runtime, "generic", data, mapping={"source": "crm", **mapping})


def _imports(runtime: Runtime, directory: Path) -> None:
    p = PERSON
    person = (
        f'{SOURCE_ID},{p["name"]},{p["email"]},{p["phone"]},"{p["address"]}",{p["birthday"]},2024-02-01,female,1987'
    )
    _import(
        runtime,
        directory,
        "members",
        [
            "customer_ref,full_name,mail,mobile,street,born,joined,sex,yob",
            person,
            "P-1002,Ordinary Member,ordinary@example.net,+1 555 0100,1 Main Street,1990-01-01,2024-03-01,male,1990",
            person.replace("2024-02-01", "2024-02-02"),  # the same member again: quarantined as a duplicate key
        ],
        {
            "entity": "members",
            "columns": {
                "member_id": "customer_ref",
                "name": "full_name",
                "email": "mail",
                "phone": "mobile",
                "address": "street",
                "birthday": "born",
                "signup_at": "joined",
                "gender": "sex",
                "birth_year": "yob",
            },
        },
    )
    _import(
        runtime,
        directory,
        "products",
        ["sku,title,category,price", "SKU-1,Linen shirt,apparel,40", "SKU-2,Teapot,home,25", "SKU-3,Scarf,apparel,15"],
        {
            "entity": "products",
            "columns": {"product_id": "sku", "title": "title", "category": "category", "price": "price"},
        },
    )
    _import(
        runtime,
        directory,
        "lines",
        [
            "order_ref,customer_ref,placed,sku,qty,price",
            f"O-1,{SOURCE_ID},2025-06-01 10:00,SKU-1,2,40",
            f"O-1,{SOURCE_ID},2025-06-01 10:00,SKU-2,1,25",
            f"O-2,{SOURCE_ID},2025-09-15 12:30,SKU-3,4,15",
            "O-3,P-1002,2025-07-01 09:00,SKU-2,1,25",
            f"O-4,{SOURCE_ID},2025-10-01 08:00,SKU-1,two,40",  # quarantined: names the member in its customer column
        ],
        {
            "entity": "order_lines",
            "columns": {
                "order_id": "order_ref",
                "member_id": "customer_ref",
                "ordered_at": "placed",
                "product_id": "sku",
                "quantity": "qty",
                "unit_price": "price",
            },
        },
    )
    _import(
        runtime,
        directory,
        "events",
        [
            "event_ref,customer_ref,sku,kind,at",
            f"E-1,{SOURCE_ID},SKU-1,view,2025-05-30 20:00",
            f"E-2,{SOURCE_ID},SKU-2,cart,2025-05-31 21:00",
        ],
        {
            "entity": "events",
            "columns": {
                "event_id": "event_ref",  # without it the event's key would be built from the customer id
                "member_id": "customer_ref",
                "product_id": "sku",
                "event_type": "kind",
                "occurred_at": "at",
            },
        },
    )


def _unredacted_quarantine(runtime: Runtime) -> None:
    """Quarantined rows as a less careful importer would keep them: personal values in the clear.

    The generic importer redacts personal fields in its quarantine; these rows
    stand for any other source, so the erasure's purge is tested on real values.
    """
    p = PERSON
    rows = [
        {"Customer No": SOURCE_ID, "E-mail": p["email"].upper(), "Note": "bad signup date"},
        {"Ref": "X-9", "Phone": p["phone"].replace(" ", "-")},
        {"Customer No": "P-5555", "Comment": f"gift for {p['name']} at {p['address']}, born {p['birthday']}"},
        {"Customer No": "P-5556", "Comment": "nothing about anyone"},
    ]
    with runtime.store.session() as session:
        run = ImportRun(format="legacy-crm", source_name="legacy.csv", sha256="", status="completed")
        session.add(run)
        session.flush()
        for number, raw in enumerate(rows, start=1):
            session.add(
                QuarantinedRow(run_id=run.id, row_number=number, field="row", reason="unreadable", raw=json.dumps(raw))
            )


def _loyalty(runtime: Runtime, member: str) -> int:
    create_tier(runtime.store, TierCreate(code="silver", name="Silver", threshold=Decimal(0)))
    create_rule(runtime.store, EarningRuleCreate(name="1 per unit", kind="base", points_per_unit=Decimal(1)), "test")
    order = OrderIn(
        order_key="crm:O-2",
        member_key=member,
        paid_at=datetime.now(UTC) - timedelta(days=1),
        lines=[OrderLineIn(sku="crm:SKU-3", amount=Decimal("60.00"))],
    )
    pending = record_order(runtime.store, order, "order-o2", "test").points
    earn_points(runtime.store, "welcome", member, EarnRequest(points=150, reference="welcome-bonus"), "test")
    return 150 + pending


def _coupons(runtime: Runtime, member: str) -> dict[str, str]:
    with runtime.store.session() as session:
        create_template(
            session,
            TemplateCreate(code="WELCOME5", name="Welcome 5 off", kind="fixed", params={"amount": "5"}),
            "test",
        )
        unused = issue_coupon(session, "WELCOME5", member, "welcome")
        used = issue_coupon(session, "WELCOME5", member, "welcome")
        reserve_coupon(session, used.code, order_reference="crm:O-1", discount=Decimal(5), member_key=member)
        redeem_coupon(session, used.code, order_reference="crm:O-1")
    return {unused.code: "issued", used.code: "redeemed"}


def _engagement(runtime: Runtime, member: str) -> None:
    set_consent(runtime.store, member, "marketing_email", "granted", source="checkout", actor="shop", evidence="co-1")
    set_consent(runtime.store, member, "personalization", "withdrawn", source="api", actor="app", evidence="prefs")
    record_feedback(runtime.store, FeedbackIn(member_key=member, item_id="crm:SKU-1", event_type="fav"))
    event = EventIn(
        placement="home", variant="a", unit_id=member, item_id="crm:SKU-2", kind="click", idempotency_key="ev-1"
    )
    record_events(runtime.store, [event])


def build_person_shop(runtime: Runtime, directory: Path) -> PersonShop:
    """The shop described in the module docstring, built."""
    import_batch(runtime, "demo", "demo-120-3", lambda: generate_shop(120, 3))
    _imports(runtime, directory)
    _unredacted_quarantine(runtime)
    build_profiles(runtime, with_models=False)
    member = member_key_of(runtime.store, "crm", SOURCE_ID)
    other = member_key_of(runtime.store, "crm", "P-1002")
    assert member is not None and other is not None
    points = _loyalty(runtime, member)
    coupons = _coupons(runtime, member)
    _engagement(runtime, member)
    return PersonShop(runtime, member, other, points, coupons)


@pytest.fixture
def person_shop(runtime: Runtime, tmp_path: Path) -> PersonShop:
    """The shop, in the test's own stores (SQLite, or PostgreSQL when the suite runs there)."""
    sources = tmp_path / "sources"  # the shop's own files: outside Patron's data directory
    sources.mkdir()
    return build_person_shop(runtime, sources)
