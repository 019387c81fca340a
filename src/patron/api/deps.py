"""Request dependencies: the runtime, the caller, permission checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from patron.analytics.artefacts import BuildReader, reader_for
from patron.api.security import limits_of
from patron.audit.changes import take as take_changes
from patron.audit.service import record
from patron.auth.rules import Permission, allowed
from patron.auth.service import Principal, cached_api_key, resolve_api_key, resolve_session
from patron.errors import AuthenticationError, AuthorizationError, RateLimitedError
from patron.runtime import Runtime

__all__ = ["SESSION_COOKIE", "Caller", "Reader", "Rt", "audit", "authorize", "client_ip", "require"]

SESSION_COOKIE = "patron_session"


async def get_runtime(request: Request) -> Runtime:
    # async: no I/O, so FastAPI calls it on the event loop instead of handing it to a worker thread
    runtime: Runtime = request.app.state.runtime
    return runtime


Rt = Annotated[Runtime, Depends(get_runtime)]


async def current_principal(request: Request, runtime: Rt) -> Principal:
    """Identify the caller by API key, bearer session token or session cookie.

    A key this process verified moments ago comes from memory on the event loop; anything else is looked up in
    the store in a worker thread. Each request with an API key takes a token from the key's rate limit.
    """
    key = _api_key(request)
    if key is None:
        return await run_in_threadpool(_session_principal, request, runtime)
    principal = cached_api_key(runtime.store, key)
    if principal is None:
        cache_seconds = runtime.settings.api_key_cache_seconds
        principal = await run_in_threadpool(resolve_api_key, runtime.store, key, cache_seconds=cache_seconds)
    decision = limits_of(request.app).api_key.take(principal.id)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise RateLimitedError(
            f"API key {principal.name!r} is over its rate limit: try again in {decision.retry_after} s",
            decision.retry_after,
        )
    return principal


def _api_key(request: Request) -> str | None:
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip().startswith("pk_"):
        return auth[7:].strip()
    return None


def _session_principal(request: Request, runtime: Runtime) -> Principal:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        request.state.session_token = token
        return resolve_session(runtime.store, runtime.settings, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        request.state.session_token = cookie  # logout revokes the session that identified the caller
        return resolve_session(runtime.store, runtime.settings, cookie)
    raise AuthenticationError("sign in or send an API key")


Caller = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold ``permission``.

    Declare it before other dependencies such as ``Reader``: FastAPI resolves
    them in order, and an anonymous caller must get 401 before anything else
    (a missing build, say) is looked up.
    """

    async def check(principal: Caller) -> Principal:  # no I/O: runs on the event loop
        return _permitted(principal, permission)

    return check


async def authorize(request: Request, permission: Permission) -> Principal:
    """What ``require(permission)`` gives, for a route that resolves its own parameters (``patron.api.lean``)."""
    return _permitted(await current_principal(request, request.app.state.runtime), permission)


def _permitted(principal: Principal, permission: Permission) -> Principal:
    if principal.mfa_pending:
        raise AuthorizationError(
            "admins must enrol a second factor first: POST /api/v1/auth/mfa/setup, then /api/v1/auth/mfa/confirm"
        )
    if not allowed(principal.role, permission, principal.scopes):
        raise AuthorizationError(f"role {principal.role!r} lacks {permission}")
    return principal


def get_reader(runtime: Rt) -> BuildReader:
    return reader_for(runtime.settings.artefact_dir)


Reader = Annotated[BuildReader, Depends(get_reader)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(
    request: Request, runtime: Runtime, actor: str, action: str, target: str | None = None, **details: object
) -> None:
    """Record an audited action with the caller's address and the rows it changed (before -> after)."""
    recorded = dict(details)
    if changes := take_changes():
        recorded["changes"] = changes
    record(runtime.store, actor, action, target, source_ip=client_ip(request), details=recorded)
