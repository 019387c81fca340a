"""API routes: the loyalty program (earning rules, event rules, tiers, orders, returns, events, jobs).

Writes that a client may retry (orders, returns, events) need an idempotency key: the ``Idempotency-Key``
header, or the ``idempotency_key`` query parameter for senders that cannot set headers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict

from patron.api.deps import Rt, audit, require
from patron.auth.service import Principal
from patron.errors import ValidationError
from patron.loyalty import jobs, program, program_events, program_rules, tiers
from patron.loyalty.earning import EarningExplanation, OrderIn
from patron.loyalty.program import OrderRecorded, ReturnLineIn, ReturnRecorded
from patron.loyalty.program_events import EventIn, EventOutcome, EventRuleRead, EventRuleSet
from patron.loyalty.program_rules import EarningRuleCreate, EarningRuleRead, EarningRuleUpdate, ProgramSettingsUpdate
from patron.loyalty.tiers import MemberTierRead, ProgramSettingsRead, TierCreate, TierRead, TierUpdate

router = APIRouter(prefix="/loyalty", tags=["loyalty program"])

Readers = Annotated[Principal, Depends(require("loyalty:read"))]
Writers = Annotated[Principal, Depends(require("loyalty:write"))]
Managers = Annotated[Principal, Depends(require("loyalty:manage"))]
TierCode = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
OrderKey = Annotated[str, Path(min_length=1, max_length=128)]
JobName = Literal["points-activation", "points-expiry", "tier-reevaluation", "coupon-expiry"]
EventName = Literal["sign_up", "first_order", "review", "birthday", "daily_check_in"]
HeaderKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
QueryKey = Annotated[str | None, Query(max_length=255, description="Instead of the Idempotency-Key header")]


def _key(header: str | None, query: str | None) -> str:
    key = header or query
    if not key:
        raise ValidationError(
            "send an Idempotency-Key header with each order, return or event", "header.Idempotency-Key"
        )
    return key


class ReturnIn(BaseModel):
    """The lines sent back; no ``lines`` (or null) returns the whole order."""

    model_config = ConfigDict(extra="forbid")

    lines: list[ReturnLineIn] | None = None


class ScheduleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str | None = None
    enabled: bool | None = None


# --- settings, tiers, rules --------------------------------------------------------


@router.get("/settings", summary="The program's settings", response_model=ProgramSettingsRead)
def settings(runtime: Rt, _caller: Readers) -> ProgramSettingsRead:
    with runtime.store.session() as session:
        return tiers.program_settings(session)


@router.patch("/settings", summary="Change the program's settings", response_model=ProgramSettingsRead)
def change_settings(
    body: ProgramSettingsUpdate, request: Request, runtime: Rt, caller: Managers
) -> ProgramSettingsRead:
    changed = program_rules.update_settings(runtime.store, body, caller.label)
    audit(request, runtime, caller.label, "loyalty_settings.update", None, fields=sorted(body.model_fields_set))
    return changed


@router.get("/tiers", summary="Tiers from the lowest threshold up", response_model=list[TierRead])
def list_tiers(runtime: Rt, _caller: Readers) -> list[TierRead]:
    with runtime.store.session() as session:
        return tiers.list_tiers(session)


@router.post("/tiers", summary="Add a tier", status_code=status.HTTP_201_CREATED, response_model=TierRead)
def add_tier(body: TierCreate, request: Request, runtime: Rt, caller: Managers) -> TierRead:
    created = tiers.create_tier(runtime.store, body)
    audit(request, runtime, caller.label, "loyalty_tier.create", f"tier:{created.code}", threshold=str(body.threshold))
    return created


@router.patch("/tiers/{code}", summary="Change a tier", response_model=TierRead)
def change_tier(code: TierCode, body: TierUpdate, request: Request, runtime: Rt, caller: Managers) -> TierRead:
    changed = tiers.update_tier(runtime.store, code, body)
    audit(request, runtime, caller.label, "loyalty_tier.update", f"tier:{code}", fields=sorted(body.model_fields_set))
    return changed


@router.delete("/tiers/{code}", summary="Delete a tier nobody holds", response_model=TierRead)
def remove_tier(code: TierCode, request: Request, runtime: Rt, caller: Managers) -> TierRead:
    removed = tiers.delete_tier(runtime.store, code)
    audit(request, runtime, caller.label, "loyalty_tier.delete", f"tier:{code}")
    return removed


@router.get("/earning-rules", summary="Earning rules", response_model=list[EarningRuleRead])
def list_rules(runtime: Rt, _caller: Readers) -> list[EarningRuleRead]:
    with runtime.store.session() as session:
        return program_rules.list_rules(session)


@router.post(
    "/earning-rules",
    summary="Add an earning rule (base rate, multiplier or cap)",
    status_code=status.HTTP_201_CREATED,
    response_model=EarningRuleRead,
)
def add_rule(body: EarningRuleCreate, request: Request, runtime: Rt, caller: Managers) -> EarningRuleRead:
    created = program_rules.create_rule(runtime.store, body, caller.label)
    audit(request, runtime, caller.label, "earning_rule.create", f"earning_rule:{created.id}", kind=created.kind)
    return created


@router.patch("/earning-rules/{rule_id}", summary="Change an earning rule", response_model=EarningRuleRead)
def change_rule(
    rule_id: RuleId, body: EarningRuleUpdate, request: Request, runtime: Rt, caller: Managers
) -> EarningRuleRead:
    changed = program_rules.update_rule(runtime.store, rule_id, body)
    fields = sorted(body.model_fields_set)
    audit(request, runtime, caller.label, "earning_rule.update", f"earning_rule:{rule_id}", fields=fields)
    return changed


@router.delete("/earning-rules/{rule_id}", summary="Delete an earning rule", response_model=EarningRuleRead)
def remove_rule(rule_id: RuleId, request: Request, runtime: Rt, caller: Managers) -> EarningRuleRead:
    removed = program_rules.delete_rule(runtime.store, rule_id)
    audit(request, runtime, caller.label, "earning_rule.delete", f"earning_rule:{rule_id}", name=removed.name)
    return removed


@router.get(
    "/event-rules", summary="Event rules (sign-up, first order, review, ...)", response_model=list[EventRuleRead]
)
def list_event_rules(runtime: Rt, _caller: Readers) -> list[EventRuleRead]:
    with runtime.store.session() as session:
        return program_events.list_event_rules(session)


@router.put("/event-rules/{event}", summary="Set an event's rule", response_model=EventRuleRead)
def set_event_rule(
    event: EventName, body: EventRuleSet, request: Request, runtime: Rt, caller: Managers
) -> EventRuleRead:
    stored = program_events.set_event_rule(runtime.store, event, body, caller.label)
    audit(request, runtime, caller.label, "event_rule.set", f"event_rule:{event}", points=stored.points)
    return stored


# --- orders, returns, events ---------------------------------------------------------


@router.post("/orders", summary="Earn an order's points (once per order)", response_model=OrderRecorded)
def add_order(
    body: OrderIn,
    request: Request,
    runtime: Rt,
    caller: Writers,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> OrderRecorded:
    recorded = program.record_order(runtime.store, body, _key(header, idempotency_key), caller.label)
    if not recorded.replayed:
        target = f"order:{body.order_key}"
        audit(
            request,
            runtime,
            caller.label,
            "loyalty_order.record",
            target,
            member=body.member_key,
            points=recorded.points,
        )
    return recorded


@router.post(
    "/orders/dry-run", summary="How many points an order would earn, and why", response_model=EarningExplanation
)
def dry_run(body: OrderIn, runtime: Rt, _caller: Readers) -> EarningExplanation:
    with runtime.store.session() as session:
        return program.dry_run(session, body)


@router.get("/orders/{order_key}", summary="An order seen for earning", response_model=OrderRecorded)
def get_order(order_key: OrderKey, runtime: Rt, _caller: Readers) -> OrderRecorded:
    with runtime.store.session() as session:
        return program.get_order(session, order_key)


@router.post(
    "/orders/{order_key}/returns",
    summary="Take back the points of returned lines (the whole order without lines)",
    response_model=ReturnRecorded,
)
def add_return(
    order_key: OrderKey,
    request: Request,
    runtime: Rt,
    caller: Writers,
    body: Annotated[ReturnIn | None, Body()] = None,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> ReturnRecorded:
    lines = body.lines if body else None
    recorded = program.record_return(runtime.store, order_key, lines, _key(header, idempotency_key), caller.label)
    if not recorded.replayed:
        target = f"order:{order_key}"
        audit(request, runtime, caller.label, "loyalty_order.return", target, points_reversed=recorded.points_reversed)
    return recorded


@router.post(
    "/events", summary="Pay a member event (sign-up, review, birthday, check-in, ...)", response_model=EventOutcome
)
def add_event(
    body: EventIn,
    request: Request,
    runtime: Rt,
    caller: Writers,
    header: HeaderKey = None,
    idempotency_key: QueryKey = None,
) -> EventOutcome:
    outcome = program.record_event(runtime.store, body, _key(header, idempotency_key), caller.label)
    if not outcome.replayed:
        audit(
            request,
            runtime,
            caller.label,
            "loyalty_event.record",
            body.member_key,
            event=body.event,
            points=outcome.points,
        )
    return outcome


@router.get(
    "/members/{member_key}/tier",
    summary="A member's tier, qualifying value and tier history",
    response_model=MemberTierRead,
)
def member_tier(
    member_key: Annotated[str, Path(pattern=r"^m[0-9a-f]{16}$")], runtime: Rt, _caller: Readers
) -> MemberTierRead:
    with runtime.store.session() as session:
        return tiers.member_tier(session, member_key)


# --- jobs ------------------------------------------------------------------------------


@router.get(
    "/jobs", summary="Scheduled jobs with their schedule, next slot and last run", response_model=list[jobs.JobRead]
)
def list_jobs(runtime: Rt, _caller: Readers) -> list[jobs.JobRead]:
    return jobs.list_jobs(runtime.store)


@router.get("/jobs/{name}/runs", summary="A job's recent runs, newest first", response_model=list[jobs.JobRunRead])
def job_runs(
    name: JobName, runtime: Rt, _caller: Readers, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[jobs.JobRunRead]:
    return jobs.list_runs(runtime.store, name, limit)


@router.patch("/jobs/{name}", summary="Change a job's schedule or switch it on or off", response_model=jobs.JobRead)
def change_job(name: JobName, body: ScheduleChange, request: Request, runtime: Rt, caller: Managers) -> jobs.JobRead:
    changed = jobs.set_schedule(runtime.store, name, body.spec, body.enabled)
    audit(
        request,
        runtime,
        caller.label,
        "loyalty_job.schedule",
        f"job:{name}",
        spec=changed.spec,
        enabled=changed.enabled,
    )
    return changed


@router.post("/jobs/{name}/run", summary="Run a job now and wait for it", response_model=jobs.JobRunRead)
def run_job(name: JobName, request: Request, runtime: Rt, caller: Managers) -> jobs.JobRunRead:
    run = jobs.run_now(runtime.store, name)
    audit(request, runtime, caller.label, "loyalty_job.run", f"job:{name}", run_id=run.id, status=run.status)
    return run
