"""Browser journeys through the console, driven by Playwright and the system Chromium."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, expect

from patron.analytics.artefacts import reader_for
from patron.analytics.service import kpi_report
from patron.runtime import Runtime
from tests.console.conftest import PASSWORD, Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPage = Callable[..., Page]
expect.set_options(timeout=15_000)


def visit(page: Page, shots: Shots, path: str, label: str) -> None:
    page.goto(path)
    shots.take(page, label)


def sign_in(page: Page, shots: Shots, username: str = "admin", next_path: str = "/") -> None:
    visit(page, shots, f"/login?next={quote(next_path, safe='')}", "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-form=login] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    if page.locator("#dashboard-data").count():
        wait_for_charts(page)
    shots.take(page, "signed-in")


def wait_for_charts(page: Page) -> None:
    for chart in ("#trend-chart", "#segment-chart"):
        expect(page.locator(f"{chart} canvas").first).to_be_attached()
    page.wait_for_timeout(600)  # let ECharts finish its entry animation before screenshots


def search_member(page: Page, shots: Shots, term: str) -> None:
    page.click("[data-nav=members]")
    page.fill("input[name=q]", term)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/members?q={term}*")
    shots.take(page, "members-search")


def test_unauthenticated_visit_redirects_to_login_and_back(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    visit(page, shots, "/members?q=12346", "redirected")

    assert page.url.endswith("/login?next=%2Fmembers%3Fq%3D12346")
    expect(page.locator("form[data-form=login]")).to_be_visible()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-form=login] button[type=submit]")
    page.wait_for_url("**/members?q=12346")
    shots.take(page, "back-at-members")
    expect(page.locator("table[data-table=members] tbody tr")).to_have_count(1)


def test_login_without_csrf_token_is_rejected(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    visit(page, shots, "/login", "login")

    bare = page.request.post("/login", form={"username": "admin", "password": PASSWORD}, max_redirects=0)
    forged = page.request.post(
        "/login", form={"username": "admin", "password": PASSWORD, "csrf_token": "0" * 64}, max_redirects=0
    )
    assert (bare.status, forged.status) == (403, 403)

    page.locator("input[name=csrf_token]").evaluate("field => field.remove()")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-form=login] button[type=submit]")
    expect(page.locator("[data-error=csrf]")).to_be_visible()
    shots.take(page, "csrf-rejected")
    visit(page, shots, "/", "still-signed-out")
    assert "/login?next=" in page.url


def test_wrong_password_shows_an_error(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    visit(page, shots, "/login", "login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("form[data-form=login] button[type=submit]")
    expect(page.locator("[data-alert=login-failed]")).to_be_visible()
    shots.take(page, "login-failed")


def test_dashboard_shows_kpis_and_both_charts(page_factory: OpenPage, shots: Shots, built_runtime: Runtime) -> None:
    report = kpi_report(reader_for(built_runtime.settings.artefact_dir), None, None, "month")
    assert report.total is not None
    page = page_factory()
    problems: list[str] = []
    page.on("console", lambda message: _record_error(problems, message))
    page.on("pageerror", lambda error: problems.append(f"page error: {_message_of(error)}"))

    sign_in(page, shots)

    expect(page.locator("[data-kpi=gmv] .kpi-value")).to_have_text(f"{report.total.gmv:,.2f}")
    expect(page.locator("[data-kpi=orders] .kpi-value")).to_have_text(f"{report.total.orders:,}")
    expect(page.locator("[data-kpi=buyers] .kpi-value")).to_have_text(f"{report.total.buyers:,}")
    expect(page.locator("[data-kpi=new_vs_returning] [data-kpi-part=new]")).to_have_text(f"{report.total.new_buyers:,}")
    expect(page.locator(".kpi-card")).to_have_count(6)
    wait_for_charts(page)
    expect(page.locator("table[data-table=segments] tbody tr")).to_have_count(10)
    shots.take(page, "dashboard")
    assert problems == []


def _record_error(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(f"console error: {message.text}")


def _message_of(error: Error) -> str:
    return error.message


def test_member_search_and_member_page(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    sign_in(page, shots)

    search_member(page, shots, "12346")
    rows = page.locator("table[data-table=members] tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator("[data-total]")).to_have_attribute("data-total", "1")
    rows.first.locator("a").click()
    page.wait_for_url("**/members/m*")
    shots.take(page, "member")

    summary = page.locator(".member-summary")
    expect(summary.locator("[data-segment]")).to_have_attribute("data-segment", "hibernating")
    expect(summary.locator("[data-segment]")).to_have_text("Hibernating")
    expect(summary.locator("[data-rfm]")).to_have_attribute("data-rfm", "R1 F1 M5")
    for letter, score in (("r", "1"), ("f", "1"), ("m", "5")):
        expect(page.locator(f"[data-score={letter}] .score-value")).to_have_text(score)
    expect(page.locator("[data-personal=shown] [data-field=source_id] dd")).to_have_text("12346")
    expect(page.locator("table[data-table=orders] tbody tr")).to_have_count(2)


def test_language_switch_is_remembered(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    sign_in(page, shots)
    expect(page.locator("[data-kpi=gmv] .kpi-label")).to_have_text("GMV")

    page.click("[data-lang=zh-CN]")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("[data-kpi=gmv] .kpi-label")).to_have_text("成交总额 (GMV)")
    expect(page.locator("[data-kpi=aov] .kpi-label")).to_have_text("客单价")
    expect(page.locator("[data-kpi=repurchase_rate] .kpi-label")).to_have_text("复购率")
    expect(page.locator("[data-nav=dashboard]")).to_have_text("经营概览")
    wait_for_charts(page)
    shots.take(page, "dashboard-zh")

    page.click("[data-nav=members]")
    page.wait_for_url("**/members")
    expect(page.locator("h1")).to_have_text("会员")
    expect(page.locator("select[name=segment] option[value=champions]")).to_have_text("重要价值客户")
    shots.take(page, "members-zh")
    search_member(page, shots, "12346")
    page.locator("table[data-table=members] tbody a").first.click()
    page.wait_for_url("**/members/m*")
    expect(page.locator(".member-summary [data-segment]")).to_have_text("沉睡客户")
    shots.take(page, "member-zh")

    cookie = next(c for c in page.context.cookies() if c["name"] == "patron_lang")
    assert cookie["value"] == "zh-CN"
    assert cookie["expires"] > time.time() + 364 * 86400

    page.click("[data-lang=en]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".member-summary [data-segment]")).to_have_text("Hibernating")
    shots.take(page, "member-en-again")


def test_analyst_does_not_see_personal_fields(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    sign_in(page, shots, username="analyst")
    expect(page.locator("[data-role]")).to_have_attribute("data-role", "analyst")

    search_member(page, shots, "12346")
    page.locator("table[data-table=members] tbody a").first.click()
    page.wait_for_url("**/members/m*")
    shots.take(page, "member-as-analyst")

    hidden = page.locator("[data-personal=hidden]")
    expect(hidden).to_contain_text("Personal fields are hidden for the Analyst role.")
    expect(page.locator("[data-personal=shown]")).to_have_count(0)
    assert "12346" not in page.locator("main").inner_text()


def test_browser_language_chooses_chinese_by_default(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory(locale="zh-CN")
    visit(page, shots, "/login", "login-zh")

    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("登录")
    expect(page.locator("[data-lang=zh-CN]")).to_have_attribute("aria-current", "true")


def test_sign_out_ends_the_session(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory()
    sign_in(page, shots)

    page.click("[data-action=logout]")
    page.wait_for_url("**/login?signed_out=1")
    expect(page.locator("[data-alert=signed-out]")).to_be_visible()
    shots.take(page, "signed-out")
    visit(page, shots, "/members", "after-sign-out")
    assert "/login?next=%2Fmembers" in page.url


def test_members_list_fits_a_phone_screen(page_factory: OpenPage, shots: Shots) -> None:
    page = page_factory(width=390, height=844)
    sign_in(page, shots, next_path="/members")

    expect(page.locator("table[data-table=members] tbody tr")).to_have_count(25)
    shots.take(page, "members-phone")
    page_width = page.evaluate("document.documentElement.scrollWidth")
    table_width = page.evaluate("document.querySelector('.table-wrap').scrollWidth")
    assert page_width <= 390 < table_width  # the table scrolls inside its panel, not the page
