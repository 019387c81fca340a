"""Member intelligence in the console over HTTP: the member page's churn, cluster and tags; clusters and
the churn model on the segments page; the rule-tags and alerts pages (numbers, permissions, CSRF, bad
input, empty states)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from patron.alerts.series import build_last_day, daily_kpis
from patron.alerts.service import list_alerts, list_rules
from patron.analytics.artefacts import reader_for
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console import rendering
from patron.console.i18n import Translator
from patron.runtime import Runtime
from patron.tags.schemas import TagCreate
from patron.tags.service import check_rule, create_tag, list_tags
from tests.console.clients import page_data, signed_in, token
from tests.console.conftest import PASSWORD

EN, ZH = Translator("en"), Translator("zh-CN")

pytestmark = pytest.mark.slow  # the session's builds


def build_dir(runtime: Runtime) -> Path:
    return Path(reader_for(runtime.settings.artefact_dir).manifest["path"])


# --- navigation and permissions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "manages_tags", "alerts"),
    [("admin", True, "manage"), ("analyst", True, "manage"), ("marketer", True, "read"), ("support", False, None)],
)
def test_links_and_forms_follow_the_role(
    retail_copy: Runtime, role: str, manages_tags: bool, alerts: str | None
) -> None:
    with signed_in(retail_copy, role) as client:
        home, tags, alert_page = client.get("/").text, client.get("/tags"), client.get("/alerts")

    assert 'data-nav="tags"' in home  # every role reads segments, and so rule tags
    assert ('data-nav="alerts"' in home) is (alerts is not None)
    assert tags.status_code == 200
    assert ('data-form="add-tag"' in tags.text) is manages_tags
    assert ('data-form="delete-tag"' in tags.text) is False  # no tag yet
    if alerts is None:
        assert alert_page.status_code == 403
        assert 'data-error="forbidden"' in alert_page.text
    else:
        assert alert_page.status_code == 200
        assert 'aria-current="page" data-nav="alerts"' in alert_page.text
        assert ('data-form="add-rule"' in alert_page.text) is (alerts == "manage")
        assert ('data-form="check-alerts"' in alert_page.text) is (alerts == "manage")


def test_forms_refuse_roles_without_the_permission(retail_copy: Runtime) -> None:
    with signed_in(retail_copy, "support") as client:
        tag = client.post("/tags", data={"name": "vip", "rule": "monetary > 1", "csrf_token": token(client)})
    with signed_in(retail_copy, "marketer") as client:
        csrf = token(client, "/alerts")
        rule = {"name": "busy", "metric": "orders", "kind": "threshold", "op": ">", "value": "1", "csrf_token": csrf}
        added = client.post("/alerts/rules", data=rule)
        checked = client.post("/alerts/check", data={"days": "1", "csrf_token": csrf})

    assert (tag.status_code, added.status_code, checked.status_code) == (403, 403, 403)
    assert list_tags(retail_copy.store) == []
    assert list_rules(retail_copy.store) == []


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/tags", {"name": "vip", "rule": "monetary > 1"}),
        ("/tags/delete", {"name": "vip"}),
        ("/alerts/rules", {"name": "busy", "metric": "orders", "kind": "threshold", "op": ">", "value": "1"}),
        ("/alerts/rules/1/delete", {}),
        ("/alerts/check", {"days": "1"}),
    ],
)
def test_forms_refuse_posts_without_a_valid_token(retail_copy: Runtime, path: str, form: dict[str, str]) -> None:
    create_tag(retail_copy.store, TagCreate(name="vip", rule="monetary > 1"), "test")
    with signed_in(retail_copy) as client:
        bare = client.post(path, data=form)
        forged = client.post(path, data={**form, "csrf_token": "0" * 64})

    for response in (bare, forged):
        assert response.status_code == 403
        assert 'data-error="csrf"' in response.text
    assert [t.name for t in list_tags(retail_copy.store)] == ["vip"]
    assert list_rules(retail_copy.store) == []
    assert list_alerts(retail_copy.store).total == 0


# --- the member page -------------------------------------------------------------------------


def _scored_member(runtime: Runtime) -> dict[str, Any]:
    """A member with a churn risk, three reasons, a cluster and a preferred weekday and hour."""
    profiles = reader_for(runtime.settings.artefact_dir).table("profiles")
    chosen = profiles.filter(
        profiles.churn_risk.notnull()
        & profiles.reason_3.notnull()
        & profiles.cluster.notnull()
        & profiles.preferred_weekday.notnull()
        & profiles.preferred_hour.notnull()
        & profiles.price_band.notnull()
    )
    rows: list[dict[str, Any]] = chosen.order_by("member_key").limit(1).to_pyarrow().to_pylist()
    assert rows, "the retail build scores churn and clusters"
    return rows[0]


def test_member_page_shows_churn_risk_reasons_cluster_and_behaviour(built_runtime: Runtime) -> None:
    member = _scored_member(built_runtime)
    clusters = json.loads((build_dir(built_runtime) / "clusters.json").read_text())
    cluster = next(c for c in clusters["clusters"] if c["id"] == member["cluster"])
    reasons = [member["reason_1"], member["reason_2"], member["reason_3"]]
    with signed_in(built_runtime) as client:
        english = client.get(f"/members/{member['member_key']}").text
        client.cookies.set("patron_lang", "zh-CN")
        chinese = client.get(f"/members/{member['member_key']}").text

    risk = member["churn_risk"]
    band = "low" if risk < 0.3 else "medium" if risk < 0.6 else "high"
    assert f'data-risk="{risk:.4f}" data-band="{band}"' in english
    assert f'data-field="churn_risk">{risk * 100:.1f}%</span>' in english
    assert EN(f"churn.band.{band}") in english and ZH(f"churn.band.{band}") in chinese
    assert re.findall(r'<li data-reason="(\w+)">', english) == reasons
    for language, html in ((EN, english), (ZH, chinese)):
        labels = re.findall(r'<li data-reason="\w+">([^<]*)</li>', html)
        assert labels == [language(f"churn.reason.{code}") for code in reasons]
    assert f'<a href="/segments#cluster-{cluster["id"]}" data-cluster="{cluster["id"]}">' in english
    assert f"data-cluster-description>{cluster['description']}</span>" in english
    weekday, hour = member["preferred_weekday"], member["preferred_hour"]
    assert _field(english, "preferred_weekday") == EN(f"weekday.{weekday}")
    assert _field(chinese, "preferred_weekday") == ZH(f"weekday.{weekday}")
    assert _field(english, "preferred_hour") == EN(
        "behaviour.hour_range", start=f"{hour:02d}:00", end=f"{hour + 1:02d}:00"
    )
    assert _field(english, "price_band") == EN(f"price_band.{member['price_band']}")
    assert _field(english, "main_channel") == member["main_channel"]
    assert _field(english, "top_category") == "—"  # the retail file has no categories
    assert 'data-state="no-rule-tags"' in english


def _field(html: str, name: str) -> str:
    found = re.search(rf'data-field="{name}">\s*<dt>[^<]*</dt>\s*<dd>([^<]*)</dd>', html)
    assert found is not None, name
    return found.group(1)


def test_member_page_of_a_build_without_models_shows_dashes(events_runtime: Runtime) -> None:
    profiles = reader_for(events_runtime.settings.artefact_dir).table("profiles")
    member_key = profiles.order_by("member_key").limit(1).member_key.to_pyarrow().to_pylist()[0]
    with signed_in(events_runtime) as client:
        response = client.get(f"/members/{member_key}")

    assert response.status_code == 200
    assert 'data-state="no-churn"' in response.text
    assert re.search(r'data-field="cluster">\s*<dt>[^<]*</dt>\s*<dd>\s*—\s*</dd>', response.text)
    assert "data-reason=" not in response.text


def test_member_page_lists_the_rule_tags_the_member_carries(retail_copy: Runtime) -> None:
    member = _scored_member(retail_copy)
    create_tag(retail_copy.store, TagCreate(name="at risk soon", rule="churn_risk >= 0"), "test")
    create_tag(retail_copy.store, TagCreate(name="nobody", rule="monetary < -1000000"), "test")
    with signed_in(retail_copy) as client:
        html = client.get(f"/members/{member['member_key']}").text

    assert re.findall(r'data-tag="([^"]*)"', html) == ["at risk soon"]
    assert 'href="/members?tag=at+risk+soon"' in html


# --- clusters and the churn model on the segments page ----------------------------------------


def test_clusters_block_matches_the_build_summary(built_runtime: Runtime) -> None:
    summary = json.loads((build_dir(built_runtime) / "clusters.json").read_text())
    with signed_in(built_runtime) as client:
        english = client.get("/segments").text
        client.cookies.set("patron_lang", "zh-CN")
        chinese = client.get("/segments").text

    by_size = sorted(summary["clusters"], key=lambda c: c["size"], reverse=True)
    rows = re.findall(r'<tr id="cluster-(\d+)" data-cluster-row="\d+">.*?data-members="(\d+)"', english, re.S)
    assert [(int(i), int(n)) for i, n in rows] == [(c["id"], c["size"]) for c in by_size]
    descriptions = re.findall(r"data-description>([^<]*)</span>", english)
    assert descriptions == [c["description"] for c in by_size]  # the English words are the build's
    charts = page_data(english)
    assert charts["cluster-sizes"]["sizes"] == [c["size"] for c in by_size]
    silhouette = charts["cluster-silhouette"]
    assert silhouette["chosen"] == summary["k"]
    assert dict(zip(silhouette["ks"], silhouette["scores"], strict=True)) == {
        int(k): round(v, 4) for k, v in summary["silhouette"].items()
    }
    assert f'data-chosen-k="{summary["k"]}"' in english
    words = [ZH(f"clusters.trait.{code.replace(':', '.')}") for code in by_size[0]["traits"]]
    assert re.findall(r"data-description>([^<]*)</span>", chinese)[0] == "、".join(words) + "的买家"


def test_churn_card_matches_the_report(built_runtime: Runtime) -> None:
    report = json.loads((build_dir(built_runtime) / "churn.json").read_text())
    with signed_in(built_runtime) as client:
        html = client.get("/segments").text

    for score in ("model", "p_alive", "recency"):
        metrics = report["metrics"][score]
        row = re.search(rf'<tr data-score="{score}".*?</tr>', html, re.S)
        assert row is not None, score
        assert f'data-metric="auc">{metrics["auc"]:,.3f}<' in row.group(0)
        assert f'data-metric="precision">{metrics["precision_top_decile"] * 100:.1f}%<' in row.group(0)
        brier = "—" if metrics["brier"] is None else f"{metrics['brier']:,.3f}"
        assert f'data-metric="brier">{brier}<' in row.group(0)
    best = max(("model", "p_alive", "recency"), key=lambda s: report["metrics"][s]["auc"])
    assert f'<tr data-score="{best}" class="is-best">' in html
    calibration = page_data(html)["churn-calibration"]["series"]
    model = report["metrics"]["model"]["calibration"]
    assert calibration[0]["points"] == [[round(b["mean_predicted"], 4), round(b["observed_rate"], 4)] for b in model]
    assert f'data-validation="{report["validation"]["cut_off"][:10]}"' in html


def test_segments_of_a_build_without_models_say_so(events_runtime: Runtime) -> None:
    with signed_in(events_runtime) as client:
        html = client.get("/segments").text

    assert 'data-state="no-clusters"' in html and 'data-state="no-churn-model"' in html
    assert EN("clusters.none_body") in html
    assert set(page_data(html)) == {"segment-treemap", "segment-shares"}


def test_unknown_traits_fall_back_to_the_english_description(retail_copy: Runtime) -> None:
    path = build_dir(retail_copy) / "clusters.json"
    summary = json.loads(path.read_text())
    summary["clusters"][0]["traits"].append("loyalty:high")
    path.write_text(json.dumps(summary))
    (build_dir(retail_copy) / "churn.json").write_text(
        json.dumps(
            {
                "status": "insufficient_history",
                "reason": "training window: 12 members",
                "as_of": "2011-12-10T00:00:00",
                "horizon_days": 90,
            }
        )
    )
    with signed_in(retail_copy, language="zh-CN") as client:
        html = client.get("/segments").text

    row = re.search(rf'data-cluster-row="{summary["clusters"][0]["id"]}">.*?</tr>', html, re.S)
    assert row is not None
    assert f"data-description>{summary['clusters'][0]['description']}</span>" in row.group(0)
    assert 'data-trait="loyalty:high">loyalty:high</span>' in row.group(0)
    assert 'data-state="churn-insufficient"' in html and "training window: 12 members" in html
    assert "churn-calibration" not in page_data(html)


# --- rule tags --------------------------------------------------------------------------------


def test_adding_a_tag_shows_its_member_count_and_lists_its_members(retail_copy: Runtime) -> None:
    profiles = reader_for(retail_copy.settings.artefact_dir).table("profiles")
    expected = int(profiles.filter((profiles.monetary > 5000) & (profiles.segment == "champions")).count().execute())
    rule = 'monetary > 5000 and segment = "champions"'
    with signed_in(retail_copy) as client:
        added = client.post(
            "/tags", data={"name": "top champions", "rule": rule, "csrf_token": token(client)}, follow_redirects=False
        )
        page = client.get(added.headers["location"]).text
        members = client.get("/members", params={"tag": "top champions"}).text

    assert added.status_code == 303 and added.headers["location"] == "/tags?added=top+champions"
    assert EN("tags.added", name="top champions") in page
    assert f'data-members="{expected}"' in page
    assert '<a class="link-strong" href="/members?tag=top+champions" data-members-link="top champions">' in page
    assert [t.members for t in list_tags(retail_copy.store, reader_for(retail_copy.settings.artefact_dir))] == [
        expected
    ]
    assert f'data-total="{expected}"' in members
    assert 'data-filter-tag="top champions"' in members


def test_a_bad_rule_is_refused_with_the_position_of_each_problem(retail_copy: Runtime) -> None:
    rule = 'monetary > 5 and segmnt = "x" and frequency >> 2'
    with signed_in(retail_copy) as client:
        response = client.post("/tags", data={"name": "broken", "rule": rule, "csrf_token": token(client)})

    problems = check_rule(rule).problems
    assert response.status_code == 422
    assert re.findall(r'data-problem-position="(\d+)"', response.text) == [str(p.position) for p in problems]
    marks = re.findall(r"<mark data-problem-mark>([^<]*)</mark>", response.text)
    assert [unescape(mark) for mark in marks] == [rule[p.position] for p in problems]
    assert EN("tags.problem_at", column=problems[0].position + 1) in response.text
    assert '<textarea name="rule"' in response.text and "segmnt = &#34;x&#34;" in response.text  # kept to fix
    assert list_tags(retail_copy.store) == []


def test_checking_a_rule_stores_nothing(retail_copy: Runtime) -> None:
    with signed_in(retail_copy, "marketer", language="zh-CN") as client:
        response = client.post(
            "/tags", data={"name": "", "rule": "MONETARY > 1", "action": "check", "csrf_token": token(client)}
        )
        valid = client.post(
            "/tags",
            data={"name": "", "rule": "monetary>1 AND r_score=5", "action": "check", "csrf_token": token(client)},
        )

    assert response.status_code == 422 and "data-problem-position=" in response.text  # field names are case-sensitive
    assert valid.status_code == 200
    assert ZH("tags.rule_valid") in valid.text and "monetary &gt; 1 and r_score = 5" in valid.text
    assert list_tags(retail_copy.store) == []


def test_tag_names_are_checked(retail_copy: Runtime) -> None:
    create_tag(retail_copy.store, TagCreate(name="vip", rule="monetary > 1"), "test")
    with signed_in(retail_copy) as client:
        unnamed = client.post("/tags", data={"name": "", "rule": "monetary > 1", "csrf_token": token(client)})
        odd = client.post("/tags", data={"name": "<b>x</b>", "rule": "monetary > 1", "csrf_token": token(client)})
        taken = client.post("/tags", data={"name": "vip", "rule": "monetary > 2", "csrf_token": token(client)})
        empty = client.post("/tags", data={"name": "x", "rule": "  ", "csrf_token": token(client)})

    assert (unnamed.status_code, odd.status_code, taken.status_code, empty.status_code) == (422, 422, 409, 422)
    assert EN("tags.invalid.name") in unnamed.text and EN("tags.invalid.name") in odd.text
    assert "&lt;b&gt;x&lt;/b&gt;" in odd.text and "<b>x</b>" not in odd.text
    assert EN("tags.name_taken", name="vip") in taken.text
    assert EN("tags.rule_required") in empty.text
    assert [(t.name, t.rule) for t in list_tags(retail_copy.store)] == [("vip", "monetary > 1")]


def test_deleting_a_tag(retail_copy: Runtime) -> None:
    create_tag(retail_copy.store, TagCreate(name="vip", rule="monetary > 1"), "test")
    with signed_in(retail_copy, "analyst") as client:
        deleted = client.post("/tags/delete", data={"name": "vip", "csrf_token": token(client)}, follow_redirects=False)
        again = client.post("/tags/delete", data={"name": "vip", "csrf_token": token(client)})

    assert deleted.status_code == 303 and deleted.headers["location"] == "/tags?deleted=vip"
    assert again.status_code == 404 and EN("tags.not_found", name="vip") in again.text
    assert list_tags(retail_copy.store) == []


def test_members_filtered_by_an_unknown_tag_say_so(retail_copy: Runtime) -> None:
    everyone = int(reader_for(retail_copy.settings.artefact_dir).table("profiles").count().execute())
    with signed_in(retail_copy) as client:
        html = client.get("/members", params={"tag": "<nope>"}).text

    assert EN("members.tag_unusable", tag="<nope>").replace("<", "&lt;").replace(">", "&gt;") in html
    assert f'data-total="{everyone}"' in html and "data-filter-tag" not in html


# --- alerts ----------------------------------------------------------------------------------


def test_adding_a_rule_and_checking_now_lists_the_alerts(retail_copy: Runtime) -> None:
    reader = reader_for(retail_copy.settings.artefact_dir)
    last = build_last_day(reader)
    orders = daily_kpis(reader, last - timedelta(days=6), last)["orders"]
    limit = int(sorted(orders.values)[3])  # the week's median: some days fire, some do not
    busy_days = sorted((d.isoformat() for d, v in zip(orders.days(), orders.values, strict=True) if v >= limit))
    busy_days.reverse()  # newest first, as the page lists them
    rule = {"name": "busy day", "metric": "orders", "kind": "threshold", "op": ">=", "value": str(limit)}
    rule["percent"] = "9"  # a field of another kind: left out, not refused
    with signed_in(retail_copy) as client:
        csrf = token(client, "/alerts")
        added = client.post("/alerts/rules", data={**rule, "csrf_token": csrf}, follow_redirects=False)
        checked = client.post("/alerts/check", data={"days": "7", "csrf_token": csrf}, follow_redirects=False)
        page = client.get(checked.headers["location"])
        again = client.post("/alerts/check", data={"days": "7", "csrf_token": csrf}, follow_redirects=False)
        chart = page_data(client.get("/alerts", params={"metric": "orders"}).text)["kpi-chart"]

    assert added.status_code == 303 and added.headers["location"] == "/alerts?added=busy+day"
    [stored] = list_rules(retail_copy.store)
    assert (stored.metric, stored.kind, stored.op, stored.value, stored.percent) == (
        "orders",
        "threshold",
        ">=",
        limit,
        None,
    )
    assert 0 < len(busy_days) < 7
    assert checked.headers["location"] == f"/alerts?checked={len(busy_days)}&days=7"
    assert EN.plural("alerts.checked", len(busy_days), days="7") in page.text
    assert re.findall(r'<tr data-alert-row="\d+" data-day="([^"]+)" data-metric="orders">', page.text) == busy_days
    assert page.text.count('data-delivery="none"') == len(busy_days)
    assert f'data-alerts-total="{len(busy_days)}"' in page.text
    assert again.headers["location"] == "/alerts?checked=0&days=7"  # each rule fires once per day
    assert [day for day, _ in chart["fired"]] == sorted(busy_days)
    assert chart["days"][-1] == last.isoformat() and len(chart["days"]) == 180
    assert [value for _, value in chart["fired"]] == [
        chart["values"][chart["days"].index(d)] for d in sorted(busy_days)
    ]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"kind": "threshold", "op": ">"}, "Limit: a threshold rule needs value"),
        ({"kind": "threshold", "op": ">", "value": "lots"}, "Limit: Input should be a valid number"),
        ({"kind": "sideways"}, "Kind: Input should be 'threshold', 'pct_change' or 'anomaly'"),
        ({"kind": "anomaly", "weeks": "99"}, "Weeks of history: Input should be less than or equal to 52"),
        ({"kind": "threshold", "op": ">", "value": "1", "name": "  "}, "Name: String should have at least 1 character"),
    ],
)
def test_a_rule_the_service_refuses_is_shown_with_the_reason(
    retail_copy: Runtime, form: dict[str, str], message: str
) -> None:
    with signed_in(retail_copy) as client:
        data = {"name": "r", "metric": "gmv", **form, "csrf_token": token(client, "/alerts")}
        response = client.post("/alerts/rules", data=data)

    assert response.status_code == 422
    assert message.replace("'", "&#39;") in response.text
    assert list_rules(retail_copy.store) == []


def test_rule_names_are_unique_and_rules_can_be_deleted(retail_copy: Runtime) -> None:
    rule = {"name": "busy", "metric": "orders", "kind": "threshold", "op": ">", "value": "1"}
    with signed_in(retail_copy) as client:
        csrf = token(client, "/alerts")
        first = client.post("/alerts/rules", data={**rule, "csrf_token": csrf}, follow_redirects=False)
        twice = client.post("/alerts/rules", data={**rule, "value": "2", "csrf_token": csrf})
        [stored] = list_rules(retail_copy.store)
        deleted = client.post(f"/alerts/rules/{stored.id}/delete", data={"csrf_token": csrf}, follow_redirects=False)
        again = client.post(f"/alerts/rules/{stored.id}/delete", data={"csrf_token": csrf})

    assert first.status_code == 303 and twice.status_code == 409
    assert EN("alerts.name_taken", name="busy") in twice.text
    assert 'value="2"' in twice.text  # the form keeps what was typed
    assert stored.value == 1
    assert deleted.status_code == 303 and deleted.headers["location"] == "/alerts?deleted=busy"
    assert again.status_code == 404 and EN("alerts.rule_not_found") in again.text
    assert list_rules(retail_copy.store) == []


def test_alert_parameters_not_understood(retail_copy: Runtime) -> None:
    with signed_in(retail_copy) as client:
        page = client.get("/alerts", params={"metric": "<profit>", "page": "abc"})
        check = client.post("/alerts/check", data={"days": "5", "csrf_token": token(client, "/alerts")})

    assert page.status_code == 200
    assert "Metric: “&lt;profit&gt;” is not a valid choice, so the default is shown." in page.text
    assert page_data(page.text)["kpi-chart"]["metric"] == "gmv"
    assert check.status_code == 422 and "Judge: “5” is not a valid choice" in check.text
    assert list_alerts(retail_copy.store).total == 0


def test_tags_and_alerts_without_a_build(runtime: Runtime) -> None:
    create_operator(runtime.store, OperatorCreate(username="admin", password=PASSWORD, role="admin"))
    with signed_in(runtime) as client:
        tags, alerts = client.get("/tags"), client.get("/alerts")
        check = client.post("/alerts/check", data={"days": "1", "csrf_token": token(client, "/alerts")})

    assert tags.status_code == 200 and EN("tags.no_build") in tags.text and 'data-form="add-tag"' in tags.text
    assert alerts.status_code == 200 and 'data-state="no-build"' in alerts.text
    assert 'data-action="check-alerts" disabled' in alerts.text
    assert 'id="page-data"' not in alerts.text and "echarts.min.js" not in alerts.text
    assert check.status_code == 409 and EN("alerts.check_no_build") in check.text


@pytest.mark.parametrize("path", ["/alerts", "/segments", "/tags"])
def test_no_inline_executable_scripts(built_runtime: Runtime, path: str) -> None:
    with signed_in(built_runtime) as client:
        html = client.get(path).text

    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        assert 'type="application/json"' in attributes or (body.strip() == "" and "src=" in attributes)


def test_without_the_chart_library_the_alerts_page_says_so(
    built_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "vendor_available", lambda: False)
    with signed_in(built_runtime) as client:
        html = client.get("/alerts").text

    assert "echarts.min.js" not in html
    assert EN("chart.unavailable") in html
