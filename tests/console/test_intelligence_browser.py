"""Member intelligence in Chromium: the member page's churn and cluster, the clusters and churn-model
charts, and the rule-tag and alert-rule journeys, in English and Chinese."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from patron.alerts.series import build_last_day, daily_kpis
from patron.analytics.artefacts import reader_for
from patron.console.i18n import Translator
from patron.runtime import Runtime
from patron.tags.service import check_rule, list_tags
from tests.console.browsing import chart, settle, sign_in
from tests.console.conftest import Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPage = Callable[..., Page]
EN, ZH = Translator("en"), Translator("zh-CN")
expect.set_options(timeout=15_000)


def _summary(runtime: Runtime, name: str) -> dict[str, Any]:
    path = Path(reader_for(runtime.settings.artefact_dir).manifest["path"]) / name
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _high_risk_member(runtime: Runtime) -> dict[str, Any]:
    profiles = reader_for(runtime.settings.artefact_dir).table("profiles")
    risky = profiles.filter((profiles.churn_risk >= 0.6) & profiles.reason_3.notnull() & profiles.cluster.notnull())
    rows: list[dict[str, Any]] = risky.order_by("member_key").limit(1).to_pyarrow().to_pylist()
    assert rows
    return rows[0]


def test_member_page_churn_and_cluster_lead_to_the_clusters_and_churn_model(
    page_factory: OpenPage, shots: Shots, built_runtime: Runtime
) -> None:
    member = _high_risk_member(built_runtime)
    clusters = _summary(built_runtime, "clusters.json")
    report = _summary(built_runtime, "churn.json")
    by_size = sorted(clusters["clusters"], key=lambda c: c["size"], reverse=True)
    reasons = [member["reason_1"], member["reason_2"], member["reason_3"]]
    page = page_factory()
    problems = sign_in(page, f"/members/{member['member_key']}")

    churn = page.locator("[data-section=churn]")
    expect(churn.locator("[data-field=churn_risk]")).to_have_text(f"{member['churn_risk'] * 100:.1f}%")
    expect(churn.locator("[data-risk-band]")).to_have_text("High risk")
    expect(churn.locator("[data-reason]")).to_have_text([EN(f"churn.reason.{code}") for code in reasons])
    fill = churn.locator(".risk-fill").evaluate("el => el.getBoundingClientRect().width / el.parentElement.clientWidth")
    assert fill == pytest.approx(member["churn_risk"], abs=0.01)
    shots.take(page, "member")

    page.click("[data-lang=zh-CN]")
    expect(churn.locator("[data-risk-band]")).to_have_text("高风险")
    expect(churn.locator("[data-reason]")).to_have_text([ZH(f"churn.reason.{code}") for code in reasons])
    shots.take(page, "member-zh")

    page.click(f"[data-cluster='{member['cluster']}']")
    page.wait_for_url(f"**/segments#cluster-{member['cluster']}")
    expect(page.locator(f"tr#cluster-{member['cluster']}")).to_be_in_viewport()
    sizes = chart(page, "#cluster-sizes")
    assert sizes["types"] == ["bar"]
    assert [item["value"] for item in sizes["data"][0]] == [c["size"] for c in by_size]
    silhouette = chart(page, "#cluster-silhouette")
    assert [item["value"] for item in silhouette["data"][0]] == [
        round(clusters["silhouette"][k], 4) for k in sorted(clusters["silhouette"], key=int)
    ]
    calibration = chart(page, "#churn-calibration")
    assert calibration["types"] == ["line", "line", "line"]
    model = report["metrics"]["model"]["calibration"]
    assert calibration["data"][0] == [[round(b["mean_predicted"], 4), round(b["observed_rate"], 4)] for b in model]
    expect(page.locator("[data-score=model] [data-metric=auc]")).to_have_text(
        f"{report['metrics']['model']['auc']:.3f}"
    )
    expect(page.locator("[data-section=clusters] h2").first).to_have_text("行为客群")
    settle(page)
    shots.take(page, "clusters-and-churn-zh")

    page.click("[data-lang=en]")
    expect(page.locator("[data-cluster-row] [data-description]").first).to_have_text(by_size[0]["description"])
    chart(page, "#churn-calibration")
    settle(page)
    shots.take(page, "clusters-and-churn")
    assert problems == []


def test_rule_tag_journey_points_at_mistakes_and_counts_members(
    page_factory: OpenPage, shots: Shots, retail_copy: Runtime, retail_copy_server: str
) -> None:
    page = page_factory(base_url=retail_copy_server)
    page.on("dialog", lambda dialog: dialog.accept())
    problems = sign_in(page, "/tags", username="marketer")
    expect(page.locator("[data-state=no-tags]")).to_be_visible()

    bad = "frequency >= 5 and monetary >> 2000"
    [problem] = check_rule(bad).problems
    page.fill("[data-form=add-tag] input[name=name]", "loyal big spenders")
    page.fill("textarea[name=rule]", bad)
    page.click("[data-action=add-tag]")
    expect(page.locator("[data-problem-mark]")).to_have_text(bad[problem.position])
    expect(page.locator("[data-problem-position]")).to_have_attribute("data-problem-position", str(problem.position))
    expect(page.locator("[data-problem-position]")).to_contain_text(f"At character {problem.position + 1}:")
    expect(page.locator("textarea[name=rule]")).to_have_value(bad)
    shots.take(page, "bad-rule")

    page.fill("textarea[name=rule]", "frequency >= 5 and monetary > 2000")
    page.click("[data-action=add-tag]")
    page.wait_for_url("**/tags?added=*")
    [tag] = list_tags(retail_copy.store, reader_for(retail_copy.settings.artefact_dir))
    assert tag.members is not None and tag.members > 0
    link = page.locator("[data-members-link='loyal big spenders']")
    expect(link).to_have_text(f"{tag.members:,}")
    shots.take(page, "tag-added")

    link.click()
    page.wait_for_url("**/members?tag=loyal+big+spenders")
    expect(page.locator("[data-total]")).to_have_attribute("data-total", str(tag.members))
    expect(page.locator("[data-filter-tag]")).to_contain_text("loyal big spenders")
    shots.take(page, "tagged-members")

    page.goto("/tags")
    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("规则标签")
    expect(page.locator("[data-tags]")).to_have_text("共 1 个标签")
    page.fill("[data-form=add-tag] input[name=name]", "x")
    page.fill("textarea[name=rule]", "segmnt = 'champions'")
    page.click("[data-action=check-rule]")
    expect(page.locator("[data-problem-position]")).to_contain_text("第 1 个字符处")
    shots.take(page, "bad-rule-zh")
    page.click("[data-action=delete-tag]")
    page.wait_for_url("**/tags?deleted=*")
    expect(page.locator("[data-state=no-tags]")).to_have_text("还没有规则标签。")
    assert list_tags(retail_copy.store) == []
    refused = [p for p in problems if "status of 422" in p]  # Chromium logs each refused form
    assert len(refused) == 2 and [p for p in problems if p not in refused] == []


def test_alert_rule_journey_checks_now_and_marks_the_fired_days(
    page_factory: OpenPage, shots: Shots, retail_copy: Runtime, retail_copy_server: str
) -> None:
    reader = reader_for(retail_copy.settings.artefact_dir)
    last = build_last_day(reader)
    week = daily_kpis(reader, last - timedelta(days=6), last)["gmv"]
    limit = round(float(sorted(week.values)[3]), 2)
    fired = sorted(d.isoformat() for d, v in zip(week.days(), week.values, strict=True) if v > limit)
    page = page_factory(base_url=retail_copy_server)
    problems = sign_in(page, "/alerts", username="analyst")
    expect(page.locator("[data-state=no-alerts]")).to_be_visible()

    form = page.locator("[data-form=add-rule]")
    form.locator("select[name=kind]").select_option("anomaly")
    expect(form.locator("input[name=value]")).to_be_hidden()
    expect(form.locator("input[name=z_threshold]")).to_be_visible()
    form.locator("select[name=kind]").select_option("threshold")
    form.locator("input[name=name]").fill("strong sales day")
    form.locator("select[name=metric]").select_option("gmv")
    form.locator("select[name=op]").select_option(">")
    form.locator("input[name=value]").fill(f"{limit}")
    page.click("[data-action=add-rule]")
    page.wait_for_url("**/alerts?added=*")
    expect(page.locator("[data-rule-name='strong sales day']")).to_contain_text(f"value > {limit:,.2f}")
    shots.take(page, "rule-added")

    page.select_option("select[name=days]", "7")
    page.click("[data-action=check-alerts]")
    page.wait_for_url("**/alerts?checked=*")
    expect(page.locator("[data-alert=alerts]")).to_have_text(EN.plural("alerts.checked", len(fired), days="7"))
    rows = page.locator("table[data-table=alerts] tbody tr")
    expect(rows).to_have_count(len(fired))
    expect(rows.first).to_have_attribute("data-day", fired[-1])
    expect(rows.first.locator("[data-delivery]")).to_have_text("No webhook")
    kpi = chart(page, "#kpi-chart")
    assert kpi["types"] == ["line", "scatter"]
    assert [day for day, _ in kpi["data"][1]] == fired
    settle(page)
    shots.take(page, "alerts-fired")

    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text("告警")
    expect(rows.first.locator("[data-delivery]")).to_have_text("未配置推送")
    page.select_option("[data-form=alerts-metric] select[name=metric]", "orders")
    page.wait_for_url("**/alerts?metric=orders")
    assert chart(page, "#kpi-chart")["data"][1] == []  # the rule watches GMV: no order-count day is marked
    settle(page)
    shots.take(page, "alerts-orders-zh")
    assert problems == []
