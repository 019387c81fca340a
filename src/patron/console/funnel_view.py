"""The funnels page: a form over the event types present, the funnel chart and its breakdown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from patron.analytics.artefacts import BuildReader
from patron.analytics.funnel import Step
from patron.analytics.schemas import EventTypeCount, FunnelGroup, FunnelReport, FunnelStepRead
from patron.analytics.service import (
    FUNNEL_BREAKDOWNS,
    MAX_FUNNEL_STEPS,
    MAX_FUNNEL_WINDOW,
    event_types,
    funnel_report,
    parse_steps,
)
from patron.console.i18n import Translator, fmt_int, fmt_percent
from patron.errors import ValidationError

__all__ = ["FORM_STEPS", "WINDOW_HOURS", "FunnelFilters", "funnels_context", "step_label"]

FORM_STEPS = 5  # step selectors on the form; the query string may carry up to MAX_FUNNEL_STEPS
WINDOW_HOURS: tuple[int, ...] = (1, 6, 24, 72, 168, 720)
ORDERS = ("strict", "any")
_PREFERRED = ("view", "cart", "purchase")
_CHART_GROUPS = 8  # bars per step in the breakdown chart; the table lists every group


class QueryValues(Protocol):
    def get(self, key: str, default: str) -> str: ...
    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class FunnelFilters:
    """The funnels page's query string; ``step`` repeats, one value per step (an event type or a step spec)."""

    steps: tuple[str, ...] = ()
    exclude: str = ""
    window_hours: float = 24
    order: str = "strict"
    breakdown: str = "none"
    ignored: tuple[tuple[str, str], ...] = ()  # (parameter, value given), replaced by the default

    @classmethod
    def parse(cls, params: QueryValues) -> FunnelFilters:
        steps = tuple(value.strip()[:300] for value in params.getlist("step") if value.strip())
        order, breakdown = params.get("order", "strict"), params.get("breakdown", "none")
        window = _hours(params.get("window", "24"))
        ignored = [("window", params.get("window", ""))] if window is None else []
        ignored += [("order", order)] if order not in ORDERS else []
        ignored += [("breakdown", breakdown)] if breakdown not in FUNNEL_BREAKDOWNS else []
        return cls(
            steps=steps,
            exclude=params.get("exclude", "").strip()[:300],
            window_hours=window or 24,
            order=order if order in ORDERS else "strict",
            breakdown=breakdown if breakdown in FUNNEL_BREAKDOWNS else "none",
            ignored=tuple((name, value[:100]) for name, value in ignored),
        )


def _hours(raw: str) -> float | None:
    try:
        hours = float(raw)
    except ValueError:
        return None
    return hours if 0 < hours <= MAX_FUNNEL_WINDOW.total_seconds() / 3600 else None


def _default_steps(types: list[EventTypeCount]) -> tuple[str, ...]:
    present = {t.event_type for t in types}
    preferred = tuple(kind for kind in _PREFERRED if kind in present)
    return preferred if len(preferred) >= 2 else tuple(t.event_type for t in types[:3])


def _parsed(specs: tuple[str, ...], translate: Translator) -> tuple[list[Step], list[str]]:
    """Steps, and a message for each spec that is not a step."""
    steps: list[Step] = []
    errors: list[str] = []
    for spec in specs:
        try:
            steps.extend(parse_steps(spec))
        except ValidationError:
            errors.append(translate("funnels.invalid_step", step=spec))
    return steps, errors


def step_label(step: Step, translate: Translator) -> str:
    """``View`` or ``View · category=Books``."""
    pairs = (("category", step.category), ("channel", step.channel), ("product", step.product_key))
    narrowed = [f"{key}={value}" for key, value in pairs if value is not None]
    return " · ".join([translate.event_type(step.event_type), *narrowed])


def _group_label(group: FunnelGroup, breakdown: str, translate: Translator) -> str:
    if group.other:
        return translate("funnels.other_values")
    if breakdown == "segment":
        return translate.segment(group.value)
    if group.value is None:
        return translate("funnels.no_value")
    if breakdown == "lifecycle":
        return translate.lifecycle(group.value) or group.value
    return group.value


def _step_cells(steps: list[FunnelStepRead], translate: Translator) -> list[dict[str, str]]:
    return [
        {
            "members": fmt_int(s.members),
            "from_previous": fmt_percent(s.conversion_from_previous),
            "from_first": fmt_percent(s.conversion_from_first),
            "median": translate.duration(s.median_seconds) if s.step > 1 else "—",
        }
        for s in steps
    ]


def _summary(report: FunnelReport, translate: Translator) -> dict[str, str]:
    first, last = report.overall[0], report.overall[-1]
    return {
        "entered": fmt_int(first.members),
        "converted": fmt_int(last.members),
        "conversion": fmt_percent(last.conversion_from_first),
        "median": translate.duration(last.median_seconds) if len(report.overall) > 1 else "—",
    }


def _chart_data(
    report: FunnelReport, labels: list[str], groups: list[dict[str, Any]], translate: Translator
) -> dict[str, Any]:
    funnel = {
        "steps": labels,
        "members": [s.members for s in report.overall],
        "fromFirst": [round(s.conversion_from_first, 4) for s in report.overall],
        "fromPrevious": [round(s.conversion_from_previous, 4) for s in report.overall],
        "median": [translate.duration(s.median_seconds) if s.step > 1 else "" for s in report.overall],
        "seriesLabel": translate("funnels.col.members"),
        "medianLabel": translate("funnels.col.median"),
    }
    charts: dict[str, Any] = {"funnel-chart": funnel}
    if groups:
        charts["breakdown-chart"] = {
            "steps": labels,
            "groups": [
                {
                    "label": g["label"],
                    "fromFirst": [round(s.conversion_from_first, 4) for s in g["steps"]],
                    "members": [s.members for s in g["steps"]],
                }
                for g in groups[:_CHART_GROUPS]
            ],
            "axisLabel": translate("funnels.col.from_first"),
        }
    return {"locale": translate.language, "charts": charts}


def _form(
    filters: FunnelFilters, steps: tuple[str, ...], types: list[EventTypeCount], translate: Translator
) -> dict[str, Any]:
    known = [(t.event_type, f"{translate.event_type(t.event_type)} ({fmt_int(t.events)})") for t in types]
    windows = sorted({*WINDOW_HOURS, filters.window_hours})
    return {
        "steps": [*steps, *([""] * (FORM_STEPS - len(steps)))],
        "event_options": known,
        "window_options": [(f"{h:g}", translate.duration(h * 3600)) for h in windows],
        "window": f"{filters.window_hours:g}",
        "window_label": translate.duration(filters.window_hours * 3600),
        "order_options": [(o, translate(f"funnels.order.{o}")) for o in ORDERS],
        "breakdown_options": [(b, translate(f"funnels.breakdown.{b}")) for b in FUNNEL_BREAKDOWNS],
    }


def _notices(filters: FunnelFilters, translate: Translator) -> list[str]:
    names = {
        "window": translate("funnels.window_label"),
        "order": translate("funnels.order_label"),
        "breakdown": translate("funnels.breakdown_label"),
    }
    return [translate("form.ignored", field=names[name], value=value) for name, value in filters.ignored]


def funnels_context(reader: BuildReader, filters: FunnelFilters, translate: Translator) -> dict[str, Any]:
    """The form, and the funnel of the chosen steps unless a step cannot be read (``errors``)."""
    types = event_types(reader)
    if not types:
        return {"no_events": True, "errors": [], "notices": []}
    specs = filters.steps or _default_steps(types)
    steps, errors = _parsed(specs, translate)
    exclusions, exclusion_errors = _parsed((filters.exclude,) if filters.exclude else (), translate)
    errors += exclusion_errors
    if len(steps) > MAX_FUNNEL_STEPS:
        errors.append(translate("funnels.too_many_steps", max=MAX_FUNNEL_STEPS))
    context: dict[str, Any] = {
        "no_events": False,
        "form": _form(filters, specs, types, translate),
        "notices": _notices(filters, translate),
        "errors": errors,
        "report": None,
    }
    if errors:
        return context
    window = timedelta(hours=filters.window_hours)
    report = funnel_report(reader, steps, window, filters.order, exclusions, filters.breakdown)
    labels = [step_label(step, translate) for step in steps]
    groups = [
        {
            "label": _group_label(g, filters.breakdown, translate),
            "steps": g.steps,
            "cells": _step_cells(g.steps, translate),
        }
        for g in report.groups
    ]
    return context | {
        "report": report,
        "labels": labels,
        "exclusion_labels": [step_label(step, translate) for step in exclusions],
        "summary": _summary(report, translate),
        "overall": _step_cells(report.overall, translate),
        "groups": groups,
        "breakdown_label": translate(f"funnels.breakdown.{filters.breakdown}"),
        "chart_data": _chart_data(report, labels, groups, translate),
    }
