"""Operators, API keys and the audit log (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel

from patron.api.deps import Rt, audit, require
from patron.audit.chain import verify_chain
from patron.audit.service import AuditPage, list_audit
from patron.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, OperatorCreate, OperatorRead
from patron.auth.service import (
    Principal,
    create_api_key,
    create_operator,
    list_api_keys,
    list_operators,
    reset_mfa,
    revoke_all_sessions,
    revoke_api_key,
)

router = APIRouter(tags=["admin"])

Operators = Annotated[Principal, Depends(require("operators:manage"))]
Keys = Annotated[Principal, Depends(require("api_keys:manage"))]


@router.get("/operators", summary="List operators", response_model=list[OperatorRead])
def operators(runtime: Rt, _caller: Operators) -> list[OperatorRead]:
    return list_operators(runtime.store)


@router.post(
    "/operators", summary="Create an operator", status_code=status.HTTP_201_CREATED, response_model=OperatorRead
)
def add_operator(body: OperatorCreate, request: Request, runtime: Rt, caller: Operators) -> OperatorRead:
    created = create_operator(runtime.store, body)
    audit(request, runtime, caller.label, "operator.create", f"operator:{created.id}", role=created.role)
    return created


@router.get("/api-keys", summary="List API keys (never their secrets)", response_model=list[ApiKeyRead])
def api_keys(runtime: Rt, _caller: Keys) -> list[ApiKeyRead]:
    return list_api_keys(runtime.store)


@router.post(
    "/api-keys", summary="Create an API key", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
def add_api_key(body: ApiKeyCreate, request: Request, runtime: Rt, caller: Keys) -> ApiKeyCreated:
    created = create_api_key(runtime.store, body, caller.id if caller.kind == "operator" else None)
    audit(request, runtime, caller.label, "api_key.create", f"api_key:{created.id}", role=created.role)
    return created


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", response_model=ApiKeyRead)
def delete_api_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request, runtime: Rt, caller: Keys
) -> ApiKeyRead:
    revoked = revoke_api_key(runtime.store, key_id)
    audit(request, runtime, caller.label, "api_key.revoke", f"api_key:{key_id}")
    return revoked


@router.post("/operators/{operator_id}/sessions/revoke", summary="End every session of an operator")
def revoke_operator_sessions(
    operator_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request, runtime: Rt, caller: Operators
) -> dict[str, int]:
    ended = revoke_all_sessions(runtime.store, operator_id)
    audit(request, runtime, caller.label, "operator.sessions_revoked", f"operator:{operator_id}", sessions=ended)
    return {"sessions_ended": ended}


@router.post(
    "/operators/{operator_id}/mfa/reset",
    summary="Remove an operator's second factor (they enrol again) and end their sessions",
)
def reset_operator_mfa(
    operator_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request, runtime: Rt, caller: Operators
) -> dict[str, int]:
    ended = reset_mfa(runtime.store, operator_id)
    audit(request, runtime, caller.label, "operator.mfa_reset", f"operator:{operator_id}", sessions=ended)
    return {"sessions_ended": ended}


@router.get("/audit", summary="The audit log, newest first", response_model=AuditPage)
def audit_log(
    runtime: Rt,
    _caller: Annotated[Principal, Depends(require("audit:read"))],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    return list_audit(runtime.store, page, page_size, action)


class AuditChainRead(BaseModel):
    """The result of recomputing the audit log's hash chain."""

    ok: bool
    entries: int
    unchained: int
    head_seq: int
    problem: str | None
    entry_id: int | None
    seq: int | None


@router.get(
    "/audit/verify",
    summary="Recompute the audit log's hash chain and name the first break, if any",
    response_model=AuditChainRead,
)
def audit_verify(runtime: Rt, _caller: Annotated[Principal, Depends(require("audit:read"))]) -> AuditChainRead:
    report = verify_chain(runtime.store, runtime.store.audit_key())
    return AuditChainRead.model_validate(report.as_dict())
