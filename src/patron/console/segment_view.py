"""The segments page: RFM segment sizes and value linked to their members, behaviour clusters, the churn model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from patron.analytics.artefacts import BuildReader
from patron.analytics.schemas import SegmentRead, SegmentSummary
from patron.analytics.service import segment_summary
from patron.console.churn_view import churn_card
from patron.console.cluster_view import clusters_context
from patron.console.i18n import Translator

__all__ = ["MEASURES", "SegmentFilters", "SegmentRow", "members_link", "segments_context"]

MEASURES: tuple[str, ...] = ("members", "monetary")


@dataclass(frozen=True)
class SegmentFilters:
    """What the treemap's areas measure: members or total spend."""

    measure: str = "members"
    ignored: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SegmentFilters:
        measure = params.get("measure", "members")
        if measure in MEASURES:
            return cls(measure=measure)
        return cls(ignored=(("measure", measure[:100]),))


def members_link(segment: str) -> str:
    """The members list filtered by ``segment``."""
    return "/members?" + urlencode({"segment": segment})


@dataclass(frozen=True)
class SegmentRow:
    key: str
    label: str
    data: SegmentRead
    spend_share: float
    href: str

    def measure(self, measure: str) -> tuple[float, float]:
        """(value, share) of the row in ``measure``."""
        if measure == "monetary":
            return round(max(self.data.monetary, 0.0), 2), self.spend_share
        return self.data.members, self.data.share


def _rows(summary: SegmentSummary, translate: Translator) -> list[SegmentRow]:
    spend = sum(max(s.monetary, 0.0) for s in summary.segments) or 1.0  # a segment of refunds draws no area
    return [
        SegmentRow(s.segment, translate.segment(s.segment), s, max(s.monetary, 0.0) / spend, members_link(s.segment))
        for s in sorted(summary.segments, key=lambda s: s.members, reverse=True)
    ]


def _charts(rows: list[SegmentRow], measure: str, translate: Translator) -> dict[str, Any]:
    nodes = []
    for row in rows:
        value, share = row.measure(measure)
        nodes.append({"key": row.key, "name": row.label, "value": value, "share": round(share, 4), "href": row.href})
    treemap = {"nodes": nodes, "measure": measure, "seriesLabel": translate(f"segments.measure.{measure}")}
    shares = {
        "keys": [row.key for row in rows],
        "labels": [row.label for row in rows],
        "members": [round(row.data.share, 4) for row in rows],
        "spend": [round(row.spend_share, 4) for row in rows],
        "membersLabel": translate("segments.share_of_members"),
        "spendLabel": translate("segments.share_of_spend"),
    }
    return {"locale": translate.language, "charts": {"segment-treemap": treemap, "segment-shares": shares}}


def segments_context(reader: BuildReader, filters: SegmentFilters, translate: Translator) -> dict[str, Any]:
    """Segment rows with their share of members and of spend, and the charts' data."""
    summary = segment_summary(reader)
    rows = _rows(summary, translate)
    label = translate("segments.measure_label")
    clusters = clusters_context(reader, translate)
    churn = churn_card(reader, translate)
    chart_data = _charts(rows, filters.measure, translate)
    if clusters is not None:
        chart_data["charts"] |= clusters["charts"]
    if churn is not None and churn.get("chart", {}).get("series"):
        chart_data["charts"]["churn-calibration"] = churn["chart"]
    return {
        "members_profiled": summary.members,
        "rows": rows,
        "notices": [translate("form.ignored", field=label, value=value) for _, value in filters.ignored],
        "measure_options": [(m, translate(f"segments.measure.{m}")) for m in MEASURES],
        "clusters": clusters,
        "churn": churn,
        "chart_data": chart_data,
    }
