"""Field-level access to personal data: admin sees it, support masked unless it gives a reason, others never."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.errors import ValidationError
from patron.members.schemas import PersonalRead
from patron.members.service import mask_personal, personal_query_kind, personal_view, reveal_reason
from tests.api.conftest import assert_problem
from tests.pseudonymization.conftest import Shop

REASON = "customer called about a parcel sent to the old address"
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def _audit(shop: Shop, action: str) -> list[dict[str, Any]]:
    response = shop.clients["admin"].get("/api/v1/audit", params={"action": action, "page_size": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _by(shop: Shop, role: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["actor"] == f"operator:{shop.operators[role]}"]


def _values(shop: Shop) -> list[str]:
    return [value for value in shop.personal.values() if value]


# --- masking ---------------------------------------------------------------------------


def test_masks_keep_a_hint_and_hide_the_value() -> None:
    shown = PersonalRead(
        source="demo",
        source_id="17",
        name="欧阳娜娜",
        email="Li.Wang12@qq.com",
        phone="13812345678",
        address="浙江省杭州市西湖区文三路12号3栋401室",
        birthday="1990-05-12",
    )

    masked = mask_personal(shown)

    assert masked.model_dump() == {
        "source": "demo",
        "source_id": "17",
        "name": "欧***",
        "email": "L***@qq.com",
        "phone": "138****5678",
        "address": "浙江省****",
        "birthday": "****-**-**",
        "masked": True,
    }
    assert mask_personal(PersonalRead(name="Emma Wang", phone="+86 138 1234 5678")).model_dump(
        include={"name", "phone"}
    ) == {"name": "E*** W***", "phone": "+86 1** **** 5678"}
    assert mask_personal(PersonalRead(name="王芳", phone="5550123")).model_dump(include={"name", "phone"}) == {
        "name": "王*",
        "phone": "*****23",
    }


@pytest.mark.parametrize(
    ("role", "reason", "view"),
    [
        ("admin", None, "full"),
        ("admin", REASON, "full"),
        ("support", None, "masked"),
        ("support", REASON, "full"),
        ("analyst", None, "none"),
        ("analyst", REASON, "none"),
        ("marketer", REASON, "none"),
    ],
)
def test_who_sees_what(role: str, reason: str | None, view: str) -> None:
    assert personal_view(role, None, reason=reason) == view
    assert personal_view(role, frozenset({"members:read"}), reason=reason) == "none"  # a key narrowed to reading


def test_a_reason_is_plain_text_without_contact_data() -> None:
    assert reveal_reason("  order   12345 \t check ") == "order 12345 check"
    assert reveal_reason("   ") is None
    for bad in ("abc", "x" * 301, "customer li.wang12@qq.com called", "call back on 138 1234 5678", "a\x00bcdef"):
        with pytest.raises(ValidationError) as refused:
            reveal_reason(bad)
        assert refused.value.field == "reason"


def test_searches_by_email_or_phone_are_personal() -> None:
    assert [personal_query_kind(q) for q in ("a@b.c", "13812345678", "+86 138-1234-5678", "12346", "m0a1b2")] == [
        "email",
        "phone",
        "phone",
        None,
        None,
    ]


# --- through the API --------------------------------------------------------------------


def test_admin_sees_personal_fields_in_full(shop: Shop) -> None:
    response = shop.clients["admin"].get(f"/api/v1/members/{shop.member_key}")

    assert response.status_code == 200
    personal = response.json()["personal"]
    assert {k: personal[k] for k in shop.personal} == shop.personal and personal["masked"] is False
    entry = _by(shop, "admin", _audit(shop, "member.personal_read"))[0]
    assert entry["target"] == shop.member_key and entry["details"] == {"view": "full"}


def test_support_sees_masked_fields_without_a_reason(shop: Shop) -> None:
    response = shop.clients["support"].get(f"/api/v1/members/{shop.member_key}")

    assert response.status_code == 200
    personal = response.json()["personal"]
    expected = mask_personal(PersonalRead(**shop.personal)).model_dump()
    assert {k: personal[k] for k in (*shop.personal, "masked")} == {k: expected[k] for k in (*shop.personal, "masked")}
    assert personal["masked"] is True
    assert not [value for value in _values(shop) if value in response.text]
    reads = _by(shop, "support", _audit(shop, "member.personal_read"))
    assert {"view": "masked"} in [e["details"] for e in reads]


def test_support_with_a_reason_sees_everything_and_the_reason_is_audited(shop: Shop) -> None:
    response = shop.clients["support"].get(f"/api/v1/members/{shop.member_key}", params={"reason": REASON})

    assert response.status_code == 200
    personal = response.json()["personal"]
    assert {k: personal[k] for k in shop.personal} == shop.personal and personal["masked"] is False
    reads = [e for e in _by(shop, "support", _audit(shop, "member.personal_read")) if "reason" in e["details"]]
    assert reads[0]["details"] == {"view": "full", "reason": REASON}
    assert reads[0]["target"] == shop.member_key
    assert not [value for value in _values(shop) if value in str(reads[0])]


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_analysts_and_marketers_never_get_personal_fields(role: str, shop: Shop) -> None:
    client = shop.clients[role]
    email, phone = shop.personal["email"], shop.personal["phone"]

    plain = client.get(f"/api/v1/members/{shop.member_key}")
    with_reason = client.get(f"/api/v1/members/{shop.member_key}", params={"reason": REASON})
    by_email = client.get("/api/v1/members", params={"q": email})
    by_phone = client.get("/api/v1/members", params={"q": phone})

    assert plain.status_code == 200 and plain.json()["personal"] is None
    assert "members:personal" in assert_problem(with_reason, 403)["detail"]
    assert "searching by e-mail needs members:personal" in assert_problem(by_email, 403)["detail"]
    assert by_phone.status_code == 200 and by_phone.json()["total"] == 0  # a number matches customer ids only
    for response in (plain, with_reason, by_email, by_phone):
        assert not [value for value in _values(shop) if value in response.text]
    assert not _by(shop, role, _audit(shop, "member.personal_read"))


def test_support_finds_members_by_email_and_phone_and_the_term_is_not_recorded(shop: Shop) -> None:
    email, phone = shop.personal["email"], shop.personal["phone"]
    assert email and phone

    by_email = shop.clients["support"].get("/api/v1/members", params={"q": email.upper()})
    by_phone = shop.clients["support"].get("/api/v1/members", params={"q": phone})

    for response in (by_email, by_phone):
        assert response.status_code == 200, response.text
        assert [m["member_key"] for m in response.json()["items"]] == [shop.member_key]
    searches = _by(shop, "support", _audit(shop, "member.personal_search"))
    assert {(e["details"]["by"], e["details"]["matches"]) for e in searches} >= {("email", 1), ("phone", 1)}
    assert not [value for value in _values(shop) if value in str(searches)]


def test_a_reason_carrying_contact_data_is_refused(shop: Shop) -> None:
    response = shop.clients["support"].get(
        f"/api/v1/members/{shop.member_key}", params={"reason": f"customer {shop.personal['email']} called"}
    )

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["reason"]


# --- in the console ---------------------------------------------------------------------


def _page(client: TestClient, path: str) -> tuple[str, str]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    token = _TOKEN.search(response.text)
    return response.text, token.group(1) if token else ""


def test_support_reveals_in_the_console_with_a_reason(shop: Shop) -> None:
    client = shop.clients["support"]
    path = f"/members/{shop.member_key}"
    email = shop.personal["email"] or ""

    masked, token = _page(client, path)
    forged = client.post(f"{path}/reveal", data={"reason": REASON, "csrf_token": "0" * 64})
    empty = client.post(f"{path}/reveal", data={"reason": " ", "csrf_token": token})
    revealed = client.post(f"{path}/reveal", data={"reason": REASON + " (console)", "csrf_token": token})

    assert 'data-personal="masked"' in masked and 'data-form="reveal"' in masked and email not in masked
    assert forged.status_code == 403 and email not in forged.text
    assert empty.status_code == 422 and 'data-alert="reveal-reason"' in empty.text and email not in empty.text
    assert revealed.status_code == 200 and 'data-personal="shown"' in revealed.text and email in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    reads = [e for e in _by(shop, "support", _audit(shop, "member.personal_read")) if e["details"].get("channel")]
    assert {"view": "full", "reason": REASON + " (console)", "channel": "console"} in [e["details"] for e in reads]


def test_analysts_see_no_personal_data_in_the_console_and_cannot_reveal_or_search_it(shop: Shop) -> None:
    client = shop.clients["analyst"]
    path = f"/members/{shop.member_key}"

    page, token = _page(client, path)
    reveal = client.post(f"{path}/reveal", data={"reason": REASON, "csrf_token": token})
    search = client.get("/members", params={"q": shop.personal["email"]})

    assert 'data-personal="hidden"' in page and 'data-form="reveal"' not in page
    assert reveal.status_code == 403 and search.status_code == 403
    for text in (page, reveal.text, search.text):
        assert not [value for value in _values(shop) if value in text]
