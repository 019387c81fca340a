"""Data-subject requests: the deadline, their life cycle, export, correction and restriction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.api.app import create_app
from patron.audit.models import AuditEntry
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.consent.service import allowed, member_consents, personalization_block
from patron.db.base import utcnow
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.members.identity import resolve_member_keys
from patron.members.vault_store import read_personal, write_personal
from patron.privacy.export import SECTIONS
from patron.privacy.schemas import Correction, PrivacyRequestCreate
from patron.privacy.service import (
    create_request,
    execute,
    get_request,
    list_requests,
    reject_request,
    start_request,
)
from patron.runtime import Runtime
from tests.api.conftest import PASSWORD, assert_problem, new_client, sign_in
from tests.privacy.conftest import PERSON, PersonShop


@pytest.fixture
def member(runtime: Runtime) -> str:
    key = str(resolve_member_keys(runtime.store, "crm", pl.Series(["R-1"]))["member_key"][0])
    write_personal(runtime.store, runtime.cipher, [(key, dict(PERSON))])
    return key


def _file(runtime: Runtime, member: str, kind: str = "export", **fields: Any) -> int:
    body = PrivacyRequestCreate.model_validate({"kind": kind, "member_key": member, **fields})
    return create_request(runtime.store, body, "operator:ann").id


def test_a_request_is_due_30_days_after_it_was_received(runtime: Runtime, member: str) -> None:
    fresh = get_request(runtime.store, _file(runtime, member))
    received = utcnow() - timedelta(days=26)
    late = get_request(runtime.store, _file(runtime, member, received_at=utcnow() - timedelta(days=31, hours=1)))
    soon = get_request(runtime.store, _file(runtime, member, "correction", received_at=received))

    assert fresh.due_at - fresh.received_at == timedelta(days=30)
    assert fresh.status == "received" and fresh.open and fresh.days_left == 30 and not fresh.overdue
    assert late.overdue and late.days_left == -2
    assert soon.days_left == 4 and not soon.overdue
    assert [r.id for r in list_requests(runtime.store, due="overdue").items] == [late.id]
    assert [r.id for r in list_requests(runtime.store, due="due_soon").items] == [soon.id]
    assert [r.id for r in list_requests(runtime.store, due="open").items] == [late.id, soon.id, fresh.id]
    assert list_requests(runtime.store, kind="correction").total == 1


def test_a_request_is_started_then_completed_or_rejected_once(runtime: Runtime, member: str) -> None:
    first, second = _file(runtime, member, "restriction"), _file(runtime, member, "export")

    started = start_request(runtime.store, first, "operator:bo")
    rejected = reject_request(runtime.store, second, "identity could not be verified", "operator:bo")

    assert started.status == "in_progress" and started.handled_by == "operator:bo"
    assert rejected.status == "rejected" and not rejected.open and rejected.days_left is None
    assert "identity could not be verified" in rejected.note and rejected.completed_at is not None
    with pytest.raises(ConflictError, match="rejected"):
        execute(runtime, second, "operator:bo")
    done = execute(runtime, first, "operator:bo").request
    assert done.status == "completed" and done.outcome == {"restricted": True}
    with pytest.raises(ConflictError, match="completed"):
        reject_request(runtime.store, first, "too late", "operator:bo")


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"note": "write to jo@example.com"}, "note", ValidationError),
        ({"received_at": utcnow() + timedelta(days=2)}, "received_at", ValidationError),
        ({"member_key": "m0000000000000000"}, None, NotFoundError),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_filed(
    runtime: Runtime, member: str, fields: dict[str, Any], field: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        _file(runtime, fields.pop("member_key", member), **fields)

    assert getattr(caught.value, "field", None) == field
    assert list_requests(runtime.store).total == 0


def test_a_correction_changes_only_the_given_fields(runtime: Runtime, member: str) -> None:
    request = _file(runtime, member, "correction")

    done = execute(runtime, request, "operator:ann", Correction(email="new.address@example.org", address=None))

    assert done.request.outcome == {"fields": ["address", "email"]}
    assert read_personal(runtime.store, runtime.cipher, member) == {
        **PERSON,
        "email": "new.address@example.org",
        "address": None,
    }


@pytest.mark.parametrize(
    ("fields", "loc"),
    [({"email": "no-at-sign"}, "email"), ({"birthday": "2999-01-01"}, "birthday"), ({"phone": "call me"}, "phone")],
)
def test_a_bad_correction_names_the_field(fields: dict[str, str], loc: str) -> None:
    from pydantic import ValidationError as PydanticError

    with pytest.raises(PydanticError) as caught:
        Correction.model_validate(fields)

    assert caught.value.errors()[0]["loc"] == (loc,)


def test_a_correction_needs_values_and_other_kinds_take_none(runtime: Runtime, member: str) -> None:
    correction, export = _file(runtime, member, "correction"), _file(runtime, member, "export")

    with pytest.raises(ValidationError) as empty:
        execute(runtime, correction, "operator:ann", Correction())
    with pytest.raises(ValidationError) as misplaced:
        execute(runtime, export, "operator:ann", Correction(name="X"))

    assert empty.value.field == misplaced.value.field == "correction"
    assert get_request(runtime.store, correction).open and get_request(runtime.store, export).open


def test_a_restriction_stops_personalization_and_marketing(runtime: Runtime, member: str) -> None:
    assert allowed(runtime.store, member, "personalization")

    execute(runtime, _file(runtime, member, "restriction"), "operator:ann")

    assert personalization_block(runtime.store, member) == "processing_restricted"
    assert not allowed(runtime.store, member, "analytics")
    restriction = member_consents(runtime.store, member).restriction
    assert restriction is not None and restriction.reason == "request"


def test_the_export_holds_every_section_with_the_members_data(person_shop: PersonShop) -> None:
    runtime, member = person_shop.runtime, person_shop.member_key
    request = _file(runtime, member, "export")

    done = execute(runtime, request, "operator:ann")
    document = done.export
    assert document is not None

    assert set(SECTIONS) <= set(document) and document["member_key"] == member
    assert document["identity"][0]["source_id"] == "P-7781" and document["personal"] == PERSON
    assert document["build"]["profile"]["member_key"] == member and document["build"]["profile"]["frequency"] == 2
    assert document["warehouse"]["member"]["birth_year"] == 1987
    assert {o["order_key"] for o in document["warehouse"]["orders"]} == {"crm:O-1", "crm:O-2"}
    assert len(document["warehouse"]["order_lines"]) == 3 and len(document["warehouse"]["events"]) == 2
    points = document["points"]
    assert points["wallet"]["available"] + points["wallet"]["pending"] == person_shop.points
    assert {t["kind"] for t in points["transactions"]} == {"earn"} and len(points["lots"]) == 2
    assert all(t["entries"] for t in points["transactions"])
    assert document["loyalty"]["tier_changes"][0]["to_tier"] == "silver"
    assert document["loyalty"]["orders"][0]["order_key"] == "crm:O-2"
    assert {c["code"]: c["status"] for c in document["promotions"]["coupons"]} == person_shop.coupons
    assert len(document["promotions"]["redemptions"]) == 1
    assert {(c["purpose"], c["state"]) for c in document["consent"]["current"]} == {
        ("marketing_email", "granted"),
        ("personalization", "withdrawn"),
    }
    assert len(document["consent"]["history"]) == 2
    assert document["recommendations"]["feedback"][0]["item_id"] == "crm:SKU-1"
    assert document["recommendations"]["events"][0]["kind"] == "click"
    assert [r["id"] for r in document["privacy_requests"]] == [request]
    assert done.request.outcome["sections"]["warehouse"] == 8  # the member's row, 2 orders, 3 lines, 2 events
    assert done.request.outcome["sections"]["personal"] == 1
    json.dumps(document)  # machine-readable as it stands


# --- through the API -------------------------------------------------------------------------


@pytest.fixture
def clients(runtime: Runtime) -> Iterator[dict[str, TestClient]]:
    app = create_app(runtime)
    with ExitStack() as stack:
        out = {}
        for role in ("support", "marketer"):
            create_operator(runtime.store, OperatorCreate(username=f"dsr-{role}", password=PASSWORD, role=role))
            out[role] = stack.enter_context(new_client(app))
            sign_in(out[role], f"dsr-{role}")
        yield out


def test_a_correction_through_the_api_is_audited_without_values(
    runtime: Runtime, member: str, clients: dict[str, TestClient]
) -> None:
    support = clients["support"]
    filed = support.post("/api/v1/privacy/requests", json={"kind": "correction", "member_key": member})
    request_id = filed.json()["id"]

    bad = support.post(f"/api/v1/privacy/requests/{request_id}/execute", json={"correction": {"email": "x"}})
    done = support.post(
        f"/api/v1/privacy/requests/{request_id}/execute", json={"correction": {"phone": "+49 30 1234567"}}
    )
    forbidden = clients["marketer"].get("/api/v1/privacy/requests")

    assert filed.status_code == 201 and filed.json()["due_at"]
    assert_problem(bad, 422)
    assert done.status_code == 200 and done.json()["request"]["outcome"] == {"fields": ["phone"]}
    assert_problem(forbidden, 403)
    with runtime.store.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.correction")).one()
    assert entry.target == member and entry.details["fields"] == ["phone"]
    assert "1234567" not in json.dumps(entry.details) and PERSON["phone"] not in json.dumps(entry.details)


def test_overdue_requests_are_listed_first_through_the_api(
    runtime: Runtime, member: str, clients: dict[str, TestClient]
) -> None:
    late = _file(runtime, member, received_at=utcnow() - timedelta(days=40))
    _file(runtime, member)

    listed = clients["support"].get("/api/v1/privacy/requests", params={"due": "overdue"})

    assert listed.status_code == 200
    assert [(r["id"], r["overdue"], r["days_left"]) for r in listed.json()["items"]] == [(late, True, -11)]
