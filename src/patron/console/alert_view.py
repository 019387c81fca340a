"""The alerts page: fired alerts, the daily KPI chart with fired days marked, rules and the rule form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from patron.alerts.schemas import AlertRead, AlertRuleCreate, AlertRuleRead
from patron.alerts.series import METRICS, Metric, build_last_day, daily_kpis, first_order_day
from patron.alerts.service import list_alerts, list_rules
from patron.analytics.artefacts import BuildReader
from patron.console.i18n import ALERT_KINDS, Translator, fmt_decimal, fmt_int, fmt_percent
from patron.db.engine import OperationalStore

__all__ = [
    "ALERTS_PAGE_SIZE",
    "CHART_DAYS",
    "CHECK_DAYS",
    "AlertFilters",
    "RuleForm",
    "alerts_context",
    "condition_text",
    "format_metric",
    "rule_from_form",
]

ALERTS_PAGE_SIZE = 25
CHART_DAYS = 180  # the KPI chart shows the build's last half year
CHECK_DAYS: tuple[int, ...] = (1, 7, 30, 90)
OPS: tuple[str, ...] = (">", ">=", "<", "<=")
_MONEY: frozenset[str] = frozenset({"gmv", "aov"})
_SHARES: frozenset[str] = frozenset({"repurchase_rate"})
_MAX_PAGE = 100_000


def format_metric(metric: str, value: float | None) -> str:
    """A metric's value as the dashboard shows it: amounts with decimals, counts whole, rates in %."""
    if value is None:
        return "—"
    if metric in _MONEY:
        return fmt_decimal(value)
    if metric in _SHARES:
        return fmt_percent(value)
    return fmt_int(value)


@dataclass(frozen=True)
class AlertFilters:
    """The alerts page's query string: the chart's metric and the page of fired alerts."""

    metric: Metric = "gmv"
    page: int = 1
    ignored: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AlertFilters:
        metric = params.get("metric", "gmv")
        chosen = next((m for m in METRICS if m == metric), None)
        try:
            page = min(max(int(params.get("page", "1")), 1), _MAX_PAGE)
        except ValueError:
            page = 1
        ignored = () if chosen is not None else (("metric", metric[:100]),)
        return cls(metric=chosen or "gmv", page=page, ignored=ignored)

    def url(self, **changes: Any) -> str:
        metric, page = changes.get("metric", self.metric), changes.get("page", self.page)
        query = [f"metric={metric}"] if metric != "gmv" else []
        query += [f"page={page}"] if page > 1 else []
        return "/alerts" + ("?" + "&".join(query) if query else "")


@dataclass(frozen=True)
class RuleForm:
    """The add-rule form as typed, and what was wrong with it."""

    values: dict[str, str] = field(
        default_factory=lambda: {"kind": "threshold", "metric": "gmv", "op": ">", "compare_to": "previous_day"}
    )
    errors: tuple[str, ...] = ()


_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "threshold": ("op", "value"),
    "pct_change": ("op", "percent", "compare_to"),
    "anomaly": ("z_threshold", "weeks", "direction"),
}


def rule_from_form(values: Mapping[str, str], translate: Translator) -> tuple[AlertRuleCreate | None, RuleForm]:
    """The rule to create from the form's fields (only those of the chosen kind), or the form with its errors."""
    typed = {name: value.strip()[:200] for name, value in values.items()}
    kind = typed.get("kind", "")
    fields: dict[str, Any] = {"name": typed.get("name", ""), "metric": typed.get("metric", ""), "kind": kind}
    for name in _KIND_FIELDS.get(kind, ()):
        if typed.get(name):
            fields[name] = typed[name]
    if kind == "anomaly" and typed.get("weeks", "").isdigit():
        fields["min_weeks"] = min(4, int(typed["weeks"]))  # the default minimum cannot exceed a shorter window
    try:
        return AlertRuleCreate.model_validate(fields), RuleForm(typed)
    except PydanticValidationError as exc:
        errors = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "rule"
            detail = str(error["msg"]).removeprefix("Value error, ")
            errors.append(translate("alerts.invalid_field", field=_field_label(name, translate), detail=detail))
        return None, RuleForm(typed, tuple(dict.fromkeys(errors)))


def _field_label(name: str, translate: Translator) -> str:
    labels = {
        "name": "alerts.field.name",
        "metric": "alerts.field.metric",
        "kind": "alerts.field.kind",
        "op": "alerts.field.op",
        "value": "alerts.field.value",
        "percent": "alerts.field.percent",
        "compare_to": "alerts.field.compare_to",
        "z_threshold": "alerts.field.z_threshold",
        "weeks": "alerts.field.weeks",
        "min_weeks": "alerts.field.weeks",
        "direction": "alerts.field.direction",
    }
    return translate(labels[name]) if name in labels else name


def condition_text(rule: AlertRuleRead, translate: Translator) -> str:
    """The rule's condition in words, e.g. ``value > 1,000.00``."""
    if rule.kind == "threshold":
        return translate("alerts.condition.threshold", op=rule.op, value=format_metric(rule.metric, rule.value))
    if rule.kind == "pct_change":
        baseline = translate(f"alerts.compare_to.{rule.compare_to or 'previous_day'}")
        return translate("alerts.condition.pct_change", op=rule.op, percent=f"{rule.percent:g}", baseline=baseline)
    direction = translate(f"alerts.direction.{rule.direction or 'both'}")
    return translate("alerts.condition.anomaly", z=f"{rule.z_threshold:g}", weeks=rule.weeks, direction=direction)


def _alert_row(alert: AlertRead, translate: Translator) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule_name,
        "metric": alert.metric,
        "metric_label": translate(f"alerts.metric.{alert.metric}"),
        "kind_label": translate(f"alerts.kind.{alert.kind}"),
        "day": alert.day.isoformat(),
        "value": format_metric(alert.metric, alert.value),
        "expected": format_metric(alert.metric, alert.expected),
        "score": "—" if alert.score is None else fmt_decimal(alert.score, 2),
        "message": alert.message,
        "delivery": alert.delivery_status,
        "delivery_label": translate(f"alerts.delivery.{alert.delivery_status}"),
        "delivery_error": alert.delivery_error,
        "created_at": alert.created_at,
    }


def _rule_row(rule: AlertRuleRead, translate: Translator) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "metric_label": translate(f"alerts.metric.{rule.metric}"),
        "kind_label": translate(f"alerts.kind.{rule.kind}"),
        "condition": condition_text(rule, translate),
        "enabled": rule.enabled,
        "webhook": rule.webhook_url is not None,
    }


def _kpi_chart(reader: BuildReader, store: OperationalStore, metric: Metric, translate: Translator) -> dict[str, Any]:
    """The metric per day over the build's last CHART_DAYS days, and the days an alert fired on it."""
    end = build_last_day(reader)
    opening = first_order_day(reader)
    start = end - timedelta(days=CHART_DAYS - 1)
    if opening is not None and opening > start:
        start = min(opening, end)
    series = daily_kpis(reader, start, end)[metric]
    days = [d.isoformat() for d in series.days()]
    values = [round(float(v), 4) for v in series.values]
    fired = list_alerts(store, 1, 500, metric=metric, start=start, end=end).items
    fired_days = sorted({a.day.isoformat() for a in fired})
    index = {day: i for i, day in enumerate(days)}
    return {
        "days": days,
        "values": values,
        "fired": [[day, values[index[day]]] for day in fired_days if day in index],
        "metric": metric,
        "money": metric in _MONEY,
        "share": metric in _SHARES,
        "seriesLabel": translate(f"alerts.metric.{metric}"),
        "firedLabel": translate("alerts.fired_series"),
    }


def _pager(filters: AlertFilters, total: int) -> dict[str, Any]:
    pages = max(1, -(-total // ALERTS_PAGE_SIZE))
    page = min(filters.page, pages)
    return {
        "page": page,
        "pages": pages,
        "previous": filters.url(page=page - 1) if page > 1 else None,
        "next": filters.url(page=page + 1) if page < pages else None,
    }


def alerts_context(
    store: OperationalStore, reader: BuildReader | None, filters: AlertFilters, translate: Translator
) -> dict[str, Any]:
    """Fired alerts (newest day first), rules, the form's options and, with a build, the KPI chart."""
    alerts = list_alerts(store, filters.page, ALERTS_PAGE_SIZE)
    if not alerts.items and alerts.total:  # a page beyond the last: show the last
        last = -(-alerts.total // ALERTS_PAGE_SIZE)
        alerts = list_alerts(store, last, ALERTS_PAGE_SIZE)
        filters = AlertFilters(filters.metric, last, filters.ignored)
    metric_label = translate("alerts.field.metric")
    context: dict[str, Any] = {
        "filters": filters,
        "notices": [translate("form.ignored", field=metric_label, value=value) for _, value in filters.ignored],
        "alerts": [_alert_row(a, translate) for a in alerts.items],
        "alerts_total": alerts.total,
        "pager": _pager(filters, alerts.total),
        "rules": [_rule_row(r, translate) for r in list_rules(store)],
        "metric_options": [(m, translate(f"alerts.metric.{m}")) for m in METRICS],
        "kind_options": [(k, translate(f"alerts.kind.{k}")) for k in ALERT_KINDS],
        "op_options": OPS,
        "compare_options": [(b, translate(f"alerts.compare_to.{b}")) for b in ("previous_day", "same_weekday")],
        "direction_options": [(d, translate(f"alerts.direction.{d}")) for d in ("both", "up", "down")],
        "check_days": CHECK_DAYS,
        "chart_data": None,
    }
    if reader is not None:
        chart = _kpi_chart(reader, store, filters.metric, translate)
        context["kpi"] = chart
        context["chart_data"] = {"locale": translate.language, "charts": {"kpi-chart": chart}}
    return context
