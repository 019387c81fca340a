"""Helpers of the browser tests: signing in, reading what ECharts drew, waiting for its animation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.console.conftest import PASSWORD

__all__ = ["chart", "settle", "sign_in"]


def sign_in(page: Page, next_path: str, username: str = "admin") -> list[str]:
    """Sign in and land on ``next_path``; returns the list that collects the page's script errors."""
    problems: list[str] = []
    page.on("console", lambda message: _record_error(problems, message))
    page.on("pageerror", lambda error: problems.append(f"page error: {error.message}"))
    page.goto(f"/login?next={quote(next_path, safe='')}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-form=login] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return problems


def _record_error(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(f"console error: {message.text}")


def chart(page: Page, box: str) -> dict[str, Any]:
    """Series types and data of the ECharts instance drawn in ``box``, once it is drawn."""
    expect(page.locator(f"{box} canvas").first).to_be_attached()
    expect(page.locator(box)).to_have_attribute("data-chart-drawn", "true")
    option: dict[str, Any] = page.evaluate(
        """box => {
            const option = window.echarts.getInstanceByDom(document.querySelector(box)).getOption();
            return {types: option.series.map(s => s.type), data: option.series.map(s => s.data)};
        }""",
        box,
    )
    return option


def settle(page: Page) -> None:
    page.wait_for_timeout(600)  # let ECharts finish its entry animation before a screenshot
