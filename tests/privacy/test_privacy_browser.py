"""Consent and a data-subject request in Chromium: the journey a support operator takes.

On the member page the operator records the member's withdrawal of marketing
e-mail (source: console) and sees it in the history; from the member's privacy
section they file an export request, execute it on the request's page and get
the member's JSON document as a download; the requests page shows it completed,
in English and in Chinese.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.consent.service import consent_history
from patron.console.i18n import Translator
from patron.privacy.service import list_requests
from tests.console.browsing import sign_in
from tests.console.conftest import PASSWORD, Shots, _serve, vendor_assets  # noqa: F401 - fixtures
from tests.privacy.conftest import PERSON, REPORTS, PersonShop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EN, ZH = Translator("en"), Translator("zh-CN")
expect.set_options(timeout=15_000)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def served(person_shop: PersonShop, vendor_assets: None) -> Iterator[str]:  # noqa: F811 - the fixture imported above
    create_operator(person_shop.runtime.store, OperatorCreate(username="support", password=PASSWORD, role="support"))
    with _serve(person_shop.runtime) as url:
        yield url


@pytest.fixture
def open_page(
    browser: Browser,
    served: str,
    shots: Shots,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[], Page]]:
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def new_page() -> Page:
        context = browser.new_context(base_url=served, locale="en-US", viewport={"width": 1440, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        pages.append(context.new_page())
        return pages[-1]

    yield new_page
    if any(report.failed for report in request.node.stash.get(REPORTS, {}).values()):
        for page in pages:
            shots.take(page, "failure")
    for context in contexts:
        context.close()


def test_record_a_withdrawal_then_file_and_execute_an_export(
    person_shop: PersonShop, open_page: Callable[[], Page], shots: Shots
) -> None:
    member = person_shop.member_key
    page = open_page()
    problems = sign_in(page, f"/members/{member}", "support")

    email = page.locator("[data-section=consent] tr[data-purpose=marketing_email]")
    expect(email).to_have_attribute("data-state", "granted")
    email.locator("select[name=state]").select_option("withdrawn")
    email.locator("input[name=evidence]").fill("asked by phone")
    email.locator("[data-action=record-consent]").click()

    expect(page.locator("[data-alert=member]")).to_have_text(
        EN("consent.saved", purpose=EN("consent.purpose.marketing_email"))
    )
    expect(email).to_have_attribute("data-state", "withdrawn")
    expect(email).to_have_attribute("data-allowed", "false")
    newest = page.locator("[data-consent-history] li").first
    expect(newest).to_have_attribute("data-source", "console")
    expect(newest).to_contain_text("asked by phone")
    shots.take(page, "consent-withdrawn")

    section = page.locator("[data-form=member-request]")
    section.locator("select[name=kind]").select_option("export")
    section.locator("input[name=note]").fill("asked by letter, identity checked")
    section.locator("[data-action=file-request]").click()
    page.wait_for_url("**/privacy/requests/*")
    expect(page.locator("[data-alert=privacy]")).to_have_text(EN("privacy.done.filed"))
    expect(page.locator("[data-section=request]")).to_have_attribute("data-status", "received")
    expect(page.locator("[data-field=days_left] dd")).to_have_text(EN.plural("privacy.days_left", 30))
    shots.take(page, "request-filed")

    with page.expect_download() as download:
        page.click("[data-form=execute] [data-action=execute]")
    document = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert document["member_key"] == member and document["personal"] == PERSON
    assert {c["purpose"]: c["state"] for c in document["consent"]["current"]}["marketing_email"] == "withdrawn"

    page.goto("/privacy?due=all")
    row = page.locator("[data-table=privacy-requests] tr[data-request]").first
    expect(row).to_have_attribute("data-status", "completed")
    expect(row).to_contain_text(EN("privacy.kind.export"))
    shots.take(page, "requests")
    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text(ZH("privacy.title"))
    expect(row.locator("td").nth(1)).to_have_text(ZH("privacy.kind.export"))
    shots.take(page, "requests-zh")

    assert consent_history(person_shop.runtime.store, member).items[0].source == "console"
    assert list_requests(person_shop.runtime.store, status="completed").total == 1
    assert problems == []
