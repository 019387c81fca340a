"""The console's consent panel, the member's privacy section and the requests pages, over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.consent.service import consent_history, member_consents
from patron.db.base import utcnow
from patron.privacy.schemas import PrivacyRequestCreate
from patron.privacy.service import create_request, get_request
from tests.console.clients import signed_in, token
from tests.console.conftest import PASSWORD
from tests.privacy.conftest import PERSON, PersonShop


@pytest.fixture
def shop(person_shop: PersonShop) -> PersonShop:
    for role in ("support", "marketer", "analyst"):
        create_operator(person_shop.runtime.store, OperatorCreate(username=role, password=PASSWORD, role=role))
    return person_shop


def test_support_sees_consents_history_and_privacy_and_may_change_them(shop: PersonShop) -> None:
    with signed_in(shop.runtime, "support") as client:
        page = client.get(f"/members/{shop.member_key}").text

    assert 'data-section="consent"' in page and 'data-section="privacy"' in page
    assert 'data-purpose="personalization" data-state="withdrawn" data-allowed="false"' in page
    assert 'data-purpose="marketing_push" data-state="denied"' in page and "default: never asked" in page
    assert 'data-personalization-blocked="consent_withdrawn"' in page
    assert 'data-consent-history="2"' in page and 'data-source="checkout"' in page
    assert 'data-form="consent-marketing_sms"' in page and 'data-form="member-request"' in page
    assert 'data-restriction="none"' in page


def test_a_marketer_reads_consents_only_and_an_analyst_sees_none(shop: PersonShop) -> None:
    with signed_in(shop.runtime, "marketer") as marketer:
        seen = marketer.get(f"/members/{shop.member_key}").text
        privacy = marketer.get("/privacy")
    with signed_in(shop.runtime, "analyst") as analyst:
        hidden = analyst.get(f"/members/{shop.member_key}").text

    assert 'data-section="consent"' in seen and 'data-form="consent-' not in seen
    assert 'data-form="member-request"' not in seen
    assert privacy.status_code == 403
    assert 'data-section="consent"' not in hidden


def test_a_withdrawal_recorded_on_the_member_page_has_the_console_as_source(shop: PersonShop) -> None:
    with signed_in(shop.runtime, "support") as client:
        form = {
            "purpose": "marketing_email",
            "state": "withdrawn",
            "evidence": "phone call",
            "csrf_token": token(client, f"/members/{shop.member_key}"),
        }
        posted = client.post(f"/members/{shop.member_key}/consents", data=form, follow_redirects=False)
        page = client.get(posted.headers["location"]).text
        forged = client.post(f"/members/{shop.member_key}/consents", data={**form, "csrf_token": "0" * 64})

    assert posted.status_code == 303 and "#consent" in posted.headers["location"]
    assert "Consent for Marketing e-mail recorded." in page
    newest = consent_history(shop.runtime.store, shop.member_key).items[0]
    assert (newest.purpose, newest.state, newest.source, newest.actor) == (
        "marketing_email",
        "withdrawn",
        "console",
        "operator:support",
    )
    assert forged.status_code == 403
    assert consent_history(shop.runtime.store, shop.member_key).total == 3


def test_a_refused_statement_is_explained_and_changes_nothing(shop: PersonShop) -> None:
    with signed_in(shop.runtime, "support") as client:
        form = {"purpose": "marketing_sms", "state": "withdrawn", "csrf_token": token(client, "/privacy")}
        page = client.post(f"/members/{shop.member_key}/consents", data=form).text

    assert "nothing to withdraw" in page
    states = {c.purpose: c.state for c in member_consents(shop.runtime.store, shop.member_key).consents}
    assert states["marketing_sms"] == "denied"


def test_the_requests_page_shows_deadlines_and_highlights_overdue_ones(shop: PersonShop) -> None:
    store = shop.runtime.store
    late = create_request(
        store,
        PrivacyRequestCreate(kind="export", member_key=shop.member_key, received_at=utcnow() - timedelta(days=35)),
        "t",
    )
    create_request(store, PrivacyRequestCreate(kind="correction", member_key=shop.other_key), "t")

    with signed_in(shop.runtime, "support") as client:
        english = client.get("/privacy").text
        overdue = client.get("/privacy", params={"due": "overdue"}).text
    with signed_in(shop.runtime, "support", language="zh-CN") as client:
        chinese = client.get("/privacy").text

    assert f'data-request="{late.id}" data-kind="export" data-status="received" data-overdue="true"' in english
    assert "overdue by 6 d" in english and "30 days left" in english
    assert 'data-requests="1"' in overdue and 'data-kind="correction"' not in overdue
    assert "隐私请求" in chinese and "已逾期 6 天" in chinese and "剩余 30 天" in chinese


def test_an_export_filed_in_the_console_downloads_the_members_document(shop: PersonShop) -> None:
    with signed_in(shop.runtime, "support") as client:
        form = {
            "member_key": shop.member_key,
            "kind": "export",
            "note": "by letter",
            "csrf_token": token(client, "/privacy"),
        }
        filed = client.post("/privacy/requests", data=form, follow_redirects=False)
        detail = client.get(filed.headers["location"]).text
        request_id = int(filed.headers["location"].split("/")[-1].split("?")[0])
        download = client.post(
            f"/privacy/requests/{request_id}/execute", data={"csrf_token": token(client, "/privacy")}
        )

    assert filed.status_code == 303 and "Request filed." in detail and 'data-action="execute"' in detail
    assert download.status_code == 200 and download.headers["content-type"].startswith("application/json")
    assert f"patron-export-{shop.member_key}-{request_id}.json" in download.headers["content-disposition"]
    assert json.loads(download.text)["personal"] == PERSON
    assert get_request(shop.runtime.store, request_id).status == "completed"


def test_an_erasure_in_the_console_needs_the_confirmation(shop: PersonShop) -> None:
    request_id = create_request(
        shop.runtime.store, PrivacyRequestCreate(kind="erasure", member_key=shop.member_key), "t"
    ).id

    with signed_in(shop.runtime, "support") as client:
        unconfirmed = client.post(
            f"/privacy/requests/{request_id}/execute", data={"csrf_token": token(client, "/privacy")}
        )
        still_open = get_request(shop.runtime.store, request_id).open
        data = {"csrf_token": token(client, "/privacy"), "confirm": "erase"}
        confirmed = client.post(f"/privacy/requests/{request_id}/execute", data=data)
        member = client.get(f"/members/{shop.member_key}").text

    assert "confirm the erasure" in unconfirmed.text and still_open
    assert "Request carried out and completed." in confirmed.text
    assert 'data-restriction="erasure"' in member and 'data-form="consent-' not in member
    assert PERSON["email"] not in member
