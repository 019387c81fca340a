"""Console pages of consent and data-subject requests.

``GET /privacy`` lists requests with their deadline (days left, overdue
highlighted) and files new ones; ``GET /privacy/requests/{id}`` shows one with
its actions (start, execute, reject; a correction takes the new values; an
export downloads the member's JSON document). ``POST /members/{key}/consents``
records a statement from the member page with source ``console``. Requests
need ``privacy:manage``; the member page's consent panel needs
``consent:read`` to show and ``consent:write`` to change. Every form carries a
CSRF token.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError as PydanticValidationError

from patron.api.deps import Rt, audit
from patron.auth.service import Principal
from patron.consent.rules import PURPOSES, STATES, BlockReason, ConsentSource
from patron.consent.service import consent_history, member_consents, set_consent
from patron.console.access import User, can, check_csrf, page_user, redirect, require
from patron.console.csrf import CSRF_FIELD
from patron.console.i18n import Translator
from patron.console.rendering import language_of, render
from patron.errors import ConflictError, NotFoundError, PatronError, ValidationError
from patron.privacy.schemas import Correction, DueFilter, PrivacyRequestCreate, RequestKind, RequestStatus
from patron.privacy.service import (
    create_request,
    execute,
    get_request,
    list_requests,
    member_requests,
    reject_request,
    start_request,
)
from patron.runtime import Runtime

__all__ = ["PRIVACY_KEYS", "member_panel", "privacy_notices", "router"]

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
Token = Annotated[str, Form(alias=CSRF_FIELD)]
_MEMBER_KEY = re.compile(r"^m[0-9a-f]{16}$")
DUES: tuple[str, ...] = (*get_args(DueFilter), "all")
KINDS: tuple[str, ...] = get_args(RequestKind)
STATUSES: tuple[str, ...] = get_args(RequestStatus)
HISTORY_ROWS = 20
PRIVACY_KEYS = {f"consent.purpose.{p}" for p in PURPOSES} | {f"consent.state.{s}" for s in STATES}
PRIVACY_KEYS |= {f"consent.source.{s}" for s in get_args(ConsentSource)}
PRIVACY_KEYS |= {f"consent.blocked.{b}" for b in get_args(BlockReason)}
PRIVACY_KEYS |= {f"privacy.kind.{k}" for k in KINDS} | {f"privacy.status.{s}" for s in STATUSES}
PRIVACY_KEYS |= {f"privacy.due.{d}" for d in DUES} | {f"privacy.restriction.{r}" for r in ("request", "erasure")}
PRIVACY_KEYS |= {f"privacy.done.{d}" for d in ("filed", "started", "executed", "rejected")}
PRIVACY_KEYS |= {f"privacy.{part}.{k}" for part in ("explain", "execute") for k in KINDS}


def _base(user: Principal) -> dict[str, Any]:
    return {"user": page_user(user), "active": "privacy"}


def _page_notices(request: Request, translate: Translator) -> list[str]:
    params = request.query_params
    if done := params.get("done"):
        return [translate(f"privacy.done.{done}")] if done in ("filed", "started", "executed", "rejected") else []
    if failed := params.get("failed"):
        return [translate("privacy.failed", reason=failed[:300])]
    return []


@router.get("/privacy")
def requests_page(request: Request, runtime: Rt, user: User, due: str = "open") -> Response:
    require(user, "privacy:manage")
    due = due if due in DUES else "open"
    found = list_requests(runtime.store, due=None if due == "all" else due, page_size=200)  # type: ignore[arg-type]
    translate = Translator(language_of(request))
    context = {
        **_base(user),
        "due": due,
        "dues": DUES,
        "kinds": KINDS,
        "requests": found.items,
        "total": found.total,
        "notices": _page_notices(request, translate),
        "member": request.query_params.get("member", "")[:17],
    }
    return render(request, "privacy.html", context)


@router.post("/privacy/requests")
def file_request(
    request: Request,
    runtime: Rt,
    user: User,
    member_key: Text = "",
    kind: Text = "",
    note: Text = "",
    csrf_token: Token = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "privacy:manage")
    try:
        body = PrivacyRequestCreate.model_validate({"kind": kind, "member_key": member_key.strip(), "note": note})
        created = create_request(runtime.store, body, user.label)
    except (PydanticValidationError, PatronError) as exc:
        return redirect("/privacy?" + urlencode({"failed": _reason(exc), "member": member_key[:17]}))
    audit(request, runtime, user.label, "privacy.request", created.member_key, request_id=created.id, kind=kind)
    return redirect(f"/privacy/requests/{created.id}?done=filed")


def _reason(exc: Exception) -> str:
    if isinstance(exc, PydanticValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


@router.get("/privacy/requests/{request_id}")
def request_page(request: Request, runtime: Rt, user: User, request_id: int) -> Response:
    require(user, "privacy:manage")
    try:
        found = get_request(runtime.store, request_id)
    except NotFoundError:
        return render(request, "error.html", {"kind": "not_found", "signed_in": True}, status=404)
    translate = Translator(language_of(request))
    context = {**_base(user), "r": found, "notices": _page_notices(request, translate)}
    return render(request, "privacy_request.html", context)


def _back(request_id: int, **params: str) -> Response:
    return redirect(f"/privacy/requests/{request_id}?" + urlencode(params))


@router.post("/privacy/requests/{request_id}/start")
def start(request: Request, runtime: Rt, user: User, request_id: int, csrf_token: Token = "") -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "privacy:manage")
    try:
        started = start_request(runtime.store, request_id, user.label)
    except PatronError as exc:
        return _back(request_id, failed=str(exc))
    audit(request, runtime, user.label, "privacy.start", started.member_key, request_id=request_id, channel="console")
    return _back(request_id, done="started")


@router.post("/privacy/requests/{request_id}/reject")
def reject(
    request: Request, runtime: Rt, user: User, request_id: int, reason: Text = "", csrf_token: Token = ""
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "privacy:manage")
    try:
        rejected = reject_request(runtime.store, request_id, reason, user.label)
    except PatronError as exc:
        return _back(request_id, failed=str(exc))
    audit(request, runtime, user.label, "privacy.reject", rejected.member_key, request_id=request_id, channel="console")
    return _back(request_id, done="rejected")


def _correction(values: dict[str, str]) -> Correction:
    given = {
        name: values[name].strip()
        for name in ("name", "email", "phone", "address", "birthday")
        if values.get(name, "").strip()
    }
    return Correction.model_validate(given)


@router.post("/privacy/requests/{request_id}/execute")
async def run(request: Request, runtime: Rt, user: User, request_id: int) -> Response:
    raw = await request.form()
    values = {key: str(value) for key, value in raw.items()}
    check_csrf(request, runtime, values.get(CSRF_FIELD, ""))
    require(user, "privacy:manage")
    try:
        kind = get_request(runtime.store, request_id).kind
        if kind == "erasure" and values.get("confirm") != "erase":
            raise ValidationError("tick the box to confirm the erasure", field="confirm")
        correction = _correction(values) if kind == "correction" else None
        done = execute(runtime, request_id, user.label, correction)
    except (PydanticValidationError, PatronError) as exc:
        return _back(request_id, failed=_reason(exc))
    details = {"request_id": request_id, "kind": kind, "channel": "console", **done.request.outcome}
    audit(request, runtime, user.label, f"privacy.{kind}", done.request.member_key, **details)
    if done.export is None:
        return _back(request_id, done="executed")
    body = json.dumps(done.export, ensure_ascii=False, indent=2, sort_keys=True)
    filename = f"patron-export-{done.request.member_key}-{request_id}.json"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post("/members/{member_key}/consents")
def record_consent(
    request: Request,
    runtime: Rt,
    user: User,
    member_key: str,
    purpose: Text = "",
    state: Text = "",
    evidence: Text = "",
    csrf_token: Token = "",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    require(user, "members:read", "consent:write")
    if not _MEMBER_KEY.match(member_key):
        return render(request, "error.html", {"kind": "member_not_found", "signed_in": True}, status=404)
    try:
        set_consent(runtime.store, member_key, purpose, state, source="console", actor=user.label, evidence=evidence)  # type: ignore[arg-type]
    except (ValidationError, ConflictError, NotFoundError) as exc:
        return redirect(f"/members/{member_key}?" + urlencode({"consent_error": str(exc)[:300]}) + "#consent")
    audit(request, runtime, user.label, "consent.set", member_key, purpose=purpose, state=state, channel="console")
    return redirect(f"/members/{member_key}?" + urlencode({"consent_saved": purpose}) + "#consent")


def privacy_notices(request: Request, translate: Translator) -> list[str]:
    """Messages of the consent form that redirected to the member page."""
    params = request.query_params
    if (saved := params.get("consent_saved")) in PURPOSES:
        return [translate("consent.saved", purpose=translate(f"consent.purpose.{saved}"))]
    if failed := params.get("consent_error"):
        return [translate("consent.failed", reason=failed[:300])]
    return []


def member_panel(runtime: Runtime, user: Principal, member_key: str) -> dict[str, Any] | None:
    """The member page's consent panel and privacy section, or None when the operator may not read consents."""
    if not can(user, "consent:read"):
        return None
    try:
        consents = member_consents(runtime.store, member_key)
    except NotFoundError:  # a key the build knows but the store does not (erased): nothing to show or change
        return None
    history = consent_history(runtime.store, member_key, page_size=HISTORY_ROWS)
    manage = can(user, "privacy:manage")
    return {
        "consents": consents,
        "history": history,
        "can_write": can(user, "consent:write"),
        "can_manage": manage,
        "requests": member_requests(runtime.store, member_key) if manage else [],
        "kinds": KINDS,
        "states": STATES,
    }
