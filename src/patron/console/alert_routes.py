"""Console routes of KPI alerts: the page, adding and deleting rules, and checking now.

``GET /alerts``, ``POST /alerts/rules``, ``POST /alerts/rules/{id}/delete``, ``POST /alerts/check``.

Reading needs ``alerts:read``; the forms need ``alerts:manage`` and a CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from patron.alerts.service import DELIVERY_WAIT, check_alerts, create_rule, delete_rule
from patron.api.deps import Rt, audit
from patron.auth.service import Principal
from patron.console.access import User, can, check_csrf, current_reader, page_user, redirect, require
from patron.console.alert_view import CHECK_DAYS, AlertFilters, RuleForm, alerts_context, rule_from_form
from patron.console.csrf import CSRF_FIELD
from patron.console.i18n import Translator, fmt_int
from patron.console.rendering import language_of, render
from patron.console.views import build_info
from patron.errors import ConflictError, NotFoundError
from patron.runtime import Runtime

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
Token = Annotated[str, Form(alias=CSRF_FIELD)]


def _page(
    request: Request,
    runtime: Runtime,
    user: Principal,
    form: RuleForm,
    notices: list[str] | None = None,
    status: int = 200,
) -> Response:
    translate = Translator(language_of(request))
    reader = current_reader(runtime)
    filters = AlertFilters.parse(request.query_params)
    page = alerts_context(runtime.store, reader, filters, translate)
    context: dict[str, Any] = {
        "user": page_user(user),
        "active": "alerts",
        "build": None if reader is None else build_info(reader),
        "no_build": reader is None,
        "can_manage": can(user, "alerts:manage"),
        "form": form,
        **page,
        "notices": [*(notices or []), *page["notices"]],
    }
    return render(request, "alerts.html", context, status=status)


def _flash(request: Request, translate: Translator) -> list[str]:
    """The message of the action that redirected here."""
    params = request.query_params
    if added := params.get("added"):
        return [translate("alerts.added", name=added[:128])]
    if deleted := params.get("deleted"):
        return [translate("alerts.deleted", name=deleted[:128])]
    checked, days = params.get("checked", ""), params.get("days", "1")
    if checked.isdigit() and days.isdigit():
        return [translate.plural("alerts.checked", int(checked), days=fmt_int(int(days)))]
    return []


@router.get("/alerts")
def alerts(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "alerts:read")
    return _page(request, runtime, user, RuleForm(), _flash(request, Translator(language_of(request))))


@router.post("/alerts/rules")
def add_rule(
    request: Request,
    runtime: Rt,
    user: User,
    name: Text = "",
    metric: Text = "",
    kind: Text = "",
    op: Text = "",
    value: Text = "",
    percent: Text = "",
    compare_to: Text = "",
    z_threshold: Text = "",
    weeks: Text = "",
    direction: Text = "",
    csrf_token: Token = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "alerts:read", "alerts:manage")
    translate = Translator(language_of(request))
    typed = {
        "name": name,
        "metric": metric,
        "kind": kind,
        "op": op,
        "value": value,
        "percent": percent,
        "compare_to": compare_to,
        "z_threshold": z_threshold,
        "weeks": weeks,
        "direction": direction,
    }
    rule, form = rule_from_form(typed, translate)
    if rule is None:
        return _page(request, runtime, user, form, status=422)
    try:
        created = create_rule(runtime, rule, user.label)
    except ConflictError:
        taken = RuleForm(form.values, (translate("alerts.name_taken", name=rule.name),))
        return _page(request, runtime, user, taken, status=409)
    target = f"alert_rule:{created.id}"
    audit(request, runtime, user.label, "alert_rule.create", target, metric=created.metric, channel="console")
    return redirect("/alerts?" + urlencode({"added": created.name}))


@router.post("/alerts/rules/{rule_id}/delete")
def remove_rule(request: Request, runtime: Rt, user: User, rule_id: int, csrf_token: Token = "") -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "alerts:read", "alerts:manage")
    try:
        removed = delete_rule(runtime.store, rule_id)
    except NotFoundError:
        message = Translator(language_of(request))("alerts.rule_not_found")
        return _page(request, runtime, user, RuleForm(), [message], status=404)
    audit(request, runtime, user.label, "alert_rule.delete", f"alert_rule:{rule_id}", channel="console")
    return redirect("/alerts?" + urlencode({"deleted": removed.name}))


@router.post("/alerts/check")
def check_now(request: Request, runtime: Rt, user: User, days: Text = "1", csrf_token: Token = "") -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "alerts:read", "alerts:manage")
    translate = Translator(language_of(request))
    span = int(days) if days.isdigit() and int(days) in CHECK_DAYS else None
    if span is None:
        message = translate("form.ignored", field=translate("alerts.check_days"), value=days[:20])
        return _page(request, runtime, user, RuleForm(), [message], status=422)
    if current_reader(runtime) is None:
        return _page(request, runtime, user, RuleForm(), [translate("alerts.check_no_build")], status=409)
    fired = check_alerts(runtime, span, wait=DELIVERY_WAIT)
    audit(request, runtime, user.label, "alerts.check", None, days=span, new_alerts=len(fired), channel="console")
    return redirect("/alerts?" + urlencode({"checked": len(fired), "days": span}))
