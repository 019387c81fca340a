"""View models: what each console page shows, computed from the services."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from patron.analytics.artefacts import BuildReader
from patron.analytics.rfm import SEGMENTS
from patron.analytics.schemas import KpiPoint, KpiReport, SegmentSummary
from patron.analytics.service import kpi_report, segment_summary
from patron.console.i18n import Translator, fmt_decimal, fmt_int, fmt_percent
from patron.errors import NotFoundError, ValidationError
from patron.members.schemas import MemberPage
from patron.members.service import SORTS, list_members
from patron.runtime import Runtime

__all__ = ["PAGE_SIZE", "MemberFilters", "build_info", "dashboard_context", "members_context"]

PAGE_SIZE = 25
SEGMENT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in SEGMENTS)
_MAX_PAGE = 1_000_000


def build_info(reader: BuildReader) -> dict[str, Any]:
    return {"id": reader.build_id, "as_of": str(reader.manifest["as_of"])}


def _empty_total(report: KpiReport) -> KpiPoint:
    return KpiPoint(
        period=datetime.combine(report.start, time()),
        gmv=0.0,
        orders=0,
        aov=0.0,
        buyers=0,
        new_buyers=0,
        returning_buyers=0,
        repurchase_rate=0.0,
    )


def _kpis(total: KpiPoint) -> dict[str, str]:
    return {
        "gmv": fmt_decimal(total.gmv),
        "orders": fmt_int(total.orders),
        "buyers": fmt_int(total.buyers),
        "aov": fmt_decimal(total.aov),
        "repurchase_rate": fmt_percent(total.repurchase_rate),
        "new_buyers": fmt_int(total.new_buyers),
        "returning_buyers": fmt_int(total.returning_buyers),
    }


def _segment_rows(summary: SegmentSummary, translate: Translator) -> list[dict[str, Any]]:
    rows = sorted(summary.segments, key=lambda s: s.members, reverse=True)
    return [{"key": s.segment, "label": translate.segment(s.segment), "data": s} for s in rows]


def _chart_data(report: KpiReport, summary: SegmentSummary, translate: Translator) -> dict[str, Any]:
    """Build what the static script draws; embedded as JSON, never as code."""
    return {
        "locale": translate.language,
        "trend": {
            "periods": [p.period.strftime("%Y-%m") for p in report.points],
            "gmv": [round(p.gmv, 2) for p in report.points],
            "orders": [p.orders for p in report.points],
            "gmvLabel": translate("kpi.gmv"),
            "ordersLabel": translate("kpi.orders"),
        },
        "segments": {
            "keys": [s.segment for s in summary.segments],
            "labels": [translate.segment(s.segment) for s in summary.segments],
            "members": [s.members for s in summary.segments],
            "shares": [round(s.share, 4) for s in summary.segments],
            "seriesLabel": translate("segments.col.members"),
        },
    }


def dashboard_context(reader: BuildReader, translate: Translator) -> dict[str, Any]:
    """KPI cards over the build's last 12 months, trend and segment charts."""
    summary = segment_summary(reader)
    report = kpi_report(reader, None, None, "month")
    total = report.total or _empty_total(report)
    return {
        "build": build_info(reader),
        "period_start": report.start.isoformat(),
        "period_end": (report.end - timedelta(days=1)).isoformat(),
        "has_orders": report.total is not None,
        "kpis": _kpis(total),
        "new_share": total.new_buyers / total.buyers if total.buyers else 0.0,
        "returning_share": total.returning_buyers / total.buyers if total.buyers else 0.0,
        "members_profiled": summary.members,
        "segments": _segment_rows(summary, translate),
        "chart_data": _chart_data(report, summary, translate),
    }


def _page_number(raw: str | None) -> int:
    try:
        return min(max(int(raw or "1"), 1), _MAX_PAGE)
    except ValueError:
        return 1


@dataclass(frozen=True)
class MemberFilters:
    """The members list's query string, normalised: bad values fall back to defaults."""

    q: str = ""
    segment: str | None = None
    tag: str | None = None
    sort: str = "monetary"
    order: str = "desc"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> MemberFilters:
        segment = params.get("segment")
        sort = params.get("sort", "monetary")
        order = params.get("order", "desc")
        return cls(
            q=params.get("q", "").strip()[:200],
            segment=segment if segment in SEGMENT_NAMES else None,
            tag=(params.get("tag") or "").strip()[:64] or None,
            sort=sort if sort in SORTS else "monetary",
            order=order if order in ("asc", "desc") else "desc",
            page=_page_number(params.get("page")),
        )

    def url(self, **changes: Any) -> str:
        """Link to the members list with these filters, changed as given."""
        chosen = replace(self, **changes)
        params = {
            "q": chosen.q,
            "segment": chosen.segment or "",
            "tag": chosen.tag or "",
            "sort": chosen.sort,
            "order": chosen.order,
        }
        query = {k: v for k, v in params.items() if v and (k, v) not in {("sort", "monetary"), ("order", "desc")}}
        if chosen.page > 1:
            query["page"] = str(chosen.page)
        return "/members" + (f"?{urlencode(query)}" if query else "")


def _pager(filters: MemberFilters, result: MemberPage) -> dict[str, Any]:
    pages = max(1, math.ceil(result.total / result.page_size))
    page = filters.page
    return {
        "page": page,
        "pages": pages,
        "previous": filters.url(page=page - 1) if page > 1 else None,
        "next": filters.url(page=page + 1) if page < pages else None,
    }


def _members(runtime: Runtime, reader: BuildReader, filters: MemberFilters, personal_search: bool) -> MemberPage:
    return list_members(
        runtime,
        reader,
        query=filters.q,
        segment=filters.segment,
        tag=filters.tag,
        page=filters.page,
        page_size=PAGE_SIZE,
        sort=filters.sort,
        descending=filters.order == "desc",
        personal_search=personal_search,
    )


def members_context(
    runtime: Runtime,
    reader: BuildReader,
    filters: MemberFilters,
    translate: Translator,
    *,
    personal_search: bool = False,
) -> dict[str, Any]:
    """One page of the members list with its filters, sort options and pager.

    A rule tag that does not exist, or names a field this build lacks, is
    dropped from the filters with a notice rather than failing the page.
    """
    notices: list[str] = []
    try:
        result = _members(runtime, reader, filters, personal_search)
    except (NotFoundError, ValidationError):
        if filters.tag is None:
            raise
        notices.append(translate("members.tag_unusable", tag=filters.tag or ""))
        filters = replace(filters, tag=None)
        result = _members(runtime, reader, filters, personal_search)
    return {
        "build": build_info(reader),
        "filters": filters,
        "notices": notices,
        "result": result,
        "pager": _pager(filters, result),
        "segment_options": [(name, translate.segment(name)) for name in reversed(SEGMENT_NAMES)],
        "sort_options": [(sort, translate(f"members.sort.{sort}")) for sort in SORTS],
    }
