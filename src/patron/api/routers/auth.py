"""Sign-in, sign-out, who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from patron.api.deps import SESSION_COOKIE, Caller, Rt, audit
from patron.auth.schemas import LoginRequest
from patron.auth.service import authenticate, open_session, revoke_session
from patron.errors import AuthenticationError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", summary="Sign in with a password; sets the session cookie")
def login(body: LoginRequest, request: Request, response: Response, runtime: Rt) -> dict[str, Any]:
    try:
        principal = authenticate(runtime.store, body.username, body.password)
    except AuthenticationError:
        audit(request, runtime, f"operator:{body.username}", "auth.login_failed")
        raise
    token = open_session(runtime.store, principal)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
        max_age=runtime.settings.session_absolute_hours * 3600,
    )
    audit(request, runtime, principal.label, "auth.login", f"operator:{principal.id}")
    return {"username": principal.name, "role": principal.role, "token": token}


@router.post("/logout", summary="End the current session")
def logout(request: Request, response: Response, runtime: Rt, caller: Caller) -> dict[str, str]:
    token: str | None = getattr(request.state, "session_token", None)
    if token:
        revoke_session(runtime.store, token)
    response.delete_cookie(SESSION_COOKIE)
    audit(request, runtime, caller.label, "auth.logout", f"{caller.kind}:{caller.id}")
    return {"status": "signed out"}


@router.get("/me", summary="The caller's identity and role")
def me(caller: Caller) -> dict[str, Any]:
    return {"kind": caller.kind, "name": caller.name, "role": caller.role, "scopes": sorted(caller.scopes or [])}
