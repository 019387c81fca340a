"""The member page's intelligence: churn risk and reasons, cluster, behaviour tags and rule tags.

Fields an older build lacks arrive as None and are shown as "—".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from patron.analytics.artefacts import BuildReader
from patron.console.churn_view import risk_context
from patron.console.cluster_view import ClusterSummary, cluster_description, cluster_href, read_clusters
from patron.console.i18n import DISCOUNT_SENSITIVITIES, PRICE_BANDS, Translator, fmt_percent
from patron.members.schemas import MemberRead, MemberView

__all__ = ["member_insight", "tag_members_link"]


def tag_members_link(name: str) -> str:
    """The members list filtered by rule tag ``name``."""
    return "/members?" + urlencode({"tag": name})


def _top_category(profile: MemberRead) -> str | None:
    if profile.top_category is None:
        return None
    if profile.top_category_share is None:
        return profile.top_category
    return f"{profile.top_category} ({fmt_percent(profile.top_category_share)})"


def _choice(value: str | None, known: tuple[str, ...], prefix: str, translate: Translator) -> str | None:
    return translate(f"{prefix}.{value}") if value in known else value


def _weekday(day: int | None, translate: Translator) -> str | None:
    return translate(f"weekday.{day}") if day is not None and 0 <= day <= 6 else None


def _hour(hour: int | None, translate: Translator) -> str | None:
    if hour is None or not 0 <= hour <= 23:
        return None
    return translate("behaviour.hour_range", start=f"{hour:02d}:00", end=f"{(hour + 1) % 24:02d}:00")


def _behaviour(profile: MemberRead, translate: Translator) -> list[tuple[str, str, str | None]]:
    """(field, label, value or None) of each behaviour tag, in the page's order."""
    return [
        ("top_category", translate("behaviour.top_category"), _top_category(profile)),
        (
            "price_band",
            translate("behaviour.price_band"),
            _choice(profile.price_band, PRICE_BANDS, "price_band", translate),
        ),
        (
            "discount_sensitivity",
            translate("behaviour.discount_sensitivity"),
            _choice(profile.discount_sensitivity, DISCOUNT_SENSITIVITIES, "discount_sensitivity", translate),
        ),
        ("preferred_weekday", translate("behaviour.preferred_weekday"), _weekday(profile.preferred_weekday, translate)),
        ("preferred_hour", translate("behaviour.preferred_hour"), _hour(profile.preferred_hour, translate)),
        ("main_channel", translate("behaviour.main_channel"), profile.main_channel),
        ("lifecycle", translate("member.lifecycle"), translate.lifecycle(profile.lifecycle)),
    ]


def _cluster(cluster_id: int | None, summary: ClusterSummary | None, translate: Translator) -> dict[str, Any] | None:
    if cluster_id is None:
        return None
    found = summary.cluster(cluster_id) if summary is not None else None
    return {
        "id": cluster_id,
        "label": translate("clusters.label", id=cluster_id),
        "description": cluster_description(found, translate) if found is not None else None,
        "href": cluster_href(cluster_id),
    }


def member_insight(reader: BuildReader, view: MemberView, translate: Translator) -> dict[str, Any]:
    """Churn risk, cluster, behaviour tags and rule tags of one member, ready for the template."""
    profile = view.profile
    cluster = _cluster(profile.cluster, read_clusters(reader) if profile.cluster is not None else None, translate)
    return {
        "churn": risk_context(reader, profile.churn_risk, profile.churn_reasons, translate),
        "cluster": cluster,
        "behaviour": _behaviour(profile, translate),
        "rule_tags": [{"name": name, "href": tag_members_link(name)} for name in view.tags],
    }
