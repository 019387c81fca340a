"""The cohorts, funnels and segments pages in Chromium: drawn charts, selectors, both languages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from patron.analytics.artefacts import reader_for
from patron.analytics.funnel import Step
from patron.analytics.service import cohort_report, funnel_report, repurchase_report, segment_summary
from patron.runtime import Runtime
from tests.conftest import REFERENCE_SEGMENTS
from tests.console.browsing import chart, settle, sign_in
from tests.console.conftest import Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPage = Callable[..., Page]
expect.set_options(timeout=15_000)


def choose(page: Page, select: str, value: str, url: str) -> None:
    """Pick an option; the form submits itself and the page reloads with it."""
    page.select_option(select, value)
    page.wait_for_url(url)


def _values(series_data: list[Any]) -> list[float]:
    return [item["value"] if isinstance(item, dict) else item for item in series_data]


def test_cohorts_heatmap_table_and_intervals_follow_the_selectors(
    page_factory: OpenPage, shots: Shots, built_runtime: Runtime
) -> None:
    reader = reader_for(built_runtime.settings.artefact_dir)
    # as of 2011-12-10 the page shows cohorts from the month (or the Monday) of 2010-12-10
    monthly = cohort_report(reader, "month", "members", date(2010, 12, 1))
    weekly = cohort_report(reader, "week", "revenue", date(2010, 12, 6))
    intervals = repurchase_report(reader)
    page = page_factory()
    problems = sign_in(page, "/cohorts")

    heatmap = chart(page, "#cohort-heatmap")
    assert heatmap["types"] == ["heatmap"]
    assert len(heatmap["data"][0]) == len(monthly.cells)
    assert chart(page, "#interval-chart")["data"][0] == [b.intervals for b in intervals.bins]
    rows = page.locator("table[data-table=cohorts] tbody tr")
    expect(rows).to_have_count(len({c.cohort for c in monthly.cells}))
    expect(page.locator("tr[data-cohort='2010-12'] td").first).to_have_text("885")
    expect(page.locator("[data-stat=p50] dd")).to_have_text(f"{intervals.percentiles['p50']:,.1f} d")
    settle(page)
    shots.take(page, "cohorts-monthly")

    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("同期群与留存")
    expect(page.locator("[data-nav=cohorts]")).to_have_attribute("aria-current", "page")
    assert chart(page, "#cohort-heatmap")["types"] == ["heatmap"]
    choose(page, "select[name=metric]", "revenue", "**/cohorts?period=month&metric=revenue")
    expect(page.locator("table[data-table=cohorts]")).to_have_attribute("data-metric", "revenue")
    expect(page.locator("select[name=metric] option[selected]")).to_have_text("收入留存率")
    chart(page, "#cohort-heatmap")
    settle(page)
    shots.take(page, "cohorts-monthly-revenue-zh")

    choose(page, "select[name=period]", "week", "**/cohorts?period=week&metric=revenue")
    expect(page.locator("table[data-table=cohorts]")).to_have_attribute("data-period", "week")
    expect(rows).to_have_count(len({c.cohort for c in weekly.cells}))
    assert len(chart(page, "#cohort-heatmap")["data"][0]) == len(weekly.cells)
    settle(page)
    shots.take(page, "cohorts-weekly-revenue-zh")
    assert problems == []


def test_funnel_chart_and_breakdown_follow_the_form(
    page_factory: OpenPage, shots: Shots, events_runtime: Runtime, events_server: str
) -> None:
    reader = reader_for(events_runtime.settings.artefact_dir)
    steps = [Step("view"), Step("cart"), Step("purchase")]
    whole = funnel_report(reader, steps, timedelta(hours=24))
    by_channel = funnel_report(reader, steps, timedelta(hours=24), breakdown="channel")
    page = page_factory(base_url=events_server)
    problems = sign_in(page, "/funnels")

    funnel = chart(page, "#funnel-chart")
    assert funnel["types"] == ["funnel"]
    assert _values(funnel["data"][0]) == [s.members for s in whole.overall]
    expect(page.locator("[data-kpi=entered] .kpi-value")).to_have_text(f"{whole.overall[0].members:,}")
    expect(page.locator("select[name=step][data-step='2'] option[selected]")).to_have_text(
        f"Add to cart ({_cart_events(reader):,})"
    )
    expect(page.locator("table[data-table=funnel-breakdown]")).to_have_count(0)
    settle(page)
    shots.take(page, "funnel")

    choose(page, "select[name=breakdown]", "channel", "**/funnels?*breakdown=channel*")
    table = page.locator("table[data-table=funnel-breakdown]")
    expect(table.locator("tbody tr")).to_have_count(len(by_channel.groups))
    expect(table.locator("tbody tr").first.locator("[data-members]").first).to_have_text(
        f"{by_channel.groups[0].steps[0].members:,}"
    )
    grouped = chart(page, "#breakdown-chart")
    assert grouped["types"] == ["bar"] * len(by_channel.groups)
    settle(page)
    shots.take(page, "funnel-by-channel")

    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("转化漏斗")
    expect(table.locator("thead th").first).to_have_text("渠道")
    expect(page.locator("table[data-table=funnel-steps] tbody tr").first).to_contain_text("浏览")
    assert chart(page, "#funnel-chart")["types"] == ["funnel"]
    chart(page, "#breakdown-chart")
    settle(page)
    shots.take(page, "funnel-by-channel-zh")
    assert problems == []


def _cart_events(reader: Any) -> int:
    events = reader.table("events")
    return int(events.filter(events.event_type == "cart").count().execute())


def test_segments_treemap_measure_and_member_links(
    page_factory: OpenPage, shots: Shots, built_runtime: Runtime
) -> None:
    summary = segment_summary(reader_for(built_runtime.settings.artefact_dir))
    page = page_factory()
    problems = sign_in(page, "/segments")

    treemap = chart(page, "#segment-treemap")
    assert treemap["types"] == ["treemap"]
    assert sorted(_values(treemap["data"][0])) == sorted(REFERENCE_SEGMENTS.values())
    assert chart(page, "#segment-shares")["types"] == ["bar", "bar"]
    expect(page.locator("table[data-table=segments] tbody tr")).to_have_count(10)
    settle(page)
    shots.take(page, "segments")

    choose(page, "select[name=measure]", "monetary", "**/segments?measure=monetary")
    spend = sorted(_values(chart(page, "#segment-treemap")["data"][0]))
    assert spend == pytest.approx(sorted(round(s.monetary, 2) for s in summary.segments))
    settle(page)
    shots.take(page, "segments-by-spend")

    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("客户分群")
    expect(page.locator("[data-segment-row=champions] [data-segment]")).to_have_text("重要价值客户")
    chart(page, "#segment-treemap")
    settle(page)
    shots.take(page, "segments-zh")
    page.click("[data-members-link=champions]")
    page.wait_for_url("**/members?segment=champions")
    expect(page.locator("[data-total]")).to_have_attribute("data-total", str(REFERENCE_SEGMENTS["champions"]))
    shots.take(page, "champions-zh")
    assert problems == []
