"""KPI alert rules, the alerts they fired, and checking them now."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from patron.alerts.schemas import (
    AlertPage,
    AlertRead,
    AlertRuleCreate,
    AlertRuleCreated,
    AlertRuleRead,
    AlertRuleUpdate,
)
from patron.alerts.series import Metric
from patron.alerts.service import (
    DELIVERY_WAIT,
    MAX_CHECK_DAYS,
    MAX_PAGE_SIZE,
    check_alerts,
    create_rule,
    delete_rule,
    list_alerts,
    list_rules,
    update_rule,
)
from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal

router = APIRouter(tags=["alerts"])

Readers = Annotated[Principal, Depends(require("alerts:read"))]
Managers = Annotated[Principal, Depends(require("alerts:manage"))]
RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/alert-rules", summary="List alert rules", response_model=list[AlertRuleRead])
def rules(runtime: Rt, _caller: Readers) -> list[AlertRuleRead]:
    return list_rules(runtime.store)


@router.post(
    "/alert-rules",
    summary="Create an alert rule; its webhook signing secret is returned only now",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertRuleCreated,
)
def add_rule(body: AlertRuleCreate, request: Request, runtime: Rt, caller: Managers) -> AlertRuleCreated:
    created = create_rule(runtime, body, caller.label)
    target = f"alert_rule:{created.id}"
    audit(request, runtime, caller.label, "alert_rule.create", target, metric=created.metric, kind=created.kind)
    return created


@router.patch("/alert-rules/{rule_id}", summary="Change an alert rule", response_model=AlertRuleRead)
def change_rule(
    rule_id: RuleId, body: AlertRuleUpdate, request: Request, runtime: Rt, caller: Managers
) -> AlertRuleRead:
    changed = update_rule(runtime.store, rule_id, body)
    fields = sorted(body.model_fields_set)
    audit(request, runtime, caller.label, "alert_rule.update", f"alert_rule:{rule_id}", fields=fields)
    return changed


@router.delete(
    "/alert-rules/{rule_id}", summary="Delete an alert rule (the alerts it fired stay)", response_model=AlertRuleRead
)
def remove_rule(rule_id: RuleId, request: Request, runtime: Rt, caller: Managers) -> AlertRuleRead:
    removed = delete_rule(runtime.store, rule_id)
    audit(request, runtime, caller.label, "alert_rule.delete", f"alert_rule:{rule_id}", name=removed.name)
    return removed


@router.get("/alerts", summary="Fired alerts, newest day first", response_model=AlertPage)
def alerts(
    runtime: Rt,
    _caller: Readers,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    rule_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    metric: Metric | None = None,
    start: Annotated[date | None, Query(description="First day, inclusive")] = None,
    end: Annotated[date | None, Query(description="Last day, inclusive")] = None,
) -> AlertPage:
    return list_alerts(runtime.store, page, page_size, rule_id=rule_id, metric=metric, start=start, end=end)


@router.post(
    "/alerts/check",
    summary="Check every enabled rule on the current build now; returns the new alerts",
    response_model=list[AlertRead],
)
def check(
    request: Request,
    runtime: Rt,
    caller: Managers,
    days: Annotated[int | None, Query(ge=1, le=MAX_CHECK_DAYS, description="Judge each of the last N days")] = None,
) -> list[AlertRead]:
    fired = check_alerts(runtime, days, wait=DELIVERY_WAIT)
    audit(request, runtime, caller.label, "alerts.check", None, days=days or 1, new_alerts=len(fired))
    return fired
