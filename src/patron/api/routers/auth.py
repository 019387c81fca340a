"""Sign-in, sign-out, who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from patron.api.deps import SESSION_COOKIE, Caller, Rt, audit
from patron.auth.schemas import LoginRequest, MfaConfirm, MfaSetup
from patron.auth.service import (
    Principal,
    authenticate,
    begin_mfa,
    confirm_mfa,
    open_session,
    revoke_all_sessions,
    revoke_session,
)
from patron.errors import AuthenticationError, AuthorizationError, RateLimitedError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", summary="Sign in with a password; sets the session cookie")
def login(body: LoginRequest, request: Request, response: Response, runtime: Rt) -> dict[str, Any]:
    try:
        principal = authenticate(
            runtime.store, body.username, body.password, body.otp, cipher=runtime.cipher, settings=runtime.settings
        )
    except (AuthenticationError, RateLimitedError) as exc:
        audit(request, runtime, f"operator:{body.username}", "auth.login_failed", reason=type(exc).__name__)
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
    return {
        "username": principal.name,
        "role": principal.role,
        "token": token,
        "mfa_enrolment_required": principal.mfa_pending,
    }


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
    return {
        "kind": caller.kind,
        "name": caller.name,
        "role": caller.role,
        "scopes": sorted(caller.scopes or []),
        "mfa_enrolment_required": caller.mfa_pending,
    }


def _operator(caller: Principal) -> int:
    if caller.kind != "operator":
        raise AuthorizationError("only an operator signed in with a password has a second factor or sessions")
    return caller.id


@router.post(
    "/mfa/setup",
    summary="Start enrolling a TOTP second factor: returns the secret once (add it to an authenticator app)",
    response_model=MfaSetup,
)
def mfa_setup(request: Request, runtime: Rt, caller: Caller) -> MfaSetup:
    setup = begin_mfa(runtime.store, runtime.cipher, _operator(caller))
    audit(request, runtime, caller.label, "auth.mfa_setup", f"operator:{caller.id}")
    return setup


@router.post("/mfa/confirm", summary="Turn the second factor on with the code the app shows now")
def mfa_confirm(body: MfaConfirm, request: Request, runtime: Rt, caller: Caller) -> dict[str, bool]:
    confirm_mfa(runtime.store, runtime.cipher, _operator(caller), body.code)
    audit(request, runtime, caller.label, "auth.mfa_enabled", f"operator:{caller.id}")
    return {"mfa_enabled": True}


@router.post("/sessions/revoke-all", summary="Sign out everywhere: end every session of the calling operator")
def revoke_everywhere(request: Request, response: Response, runtime: Rt, caller: Caller) -> dict[str, int]:
    ended = revoke_all_sessions(runtime.store, _operator(caller))
    response.delete_cookie(SESSION_COOKIE)
    audit(request, runtime, caller.label, "auth.sessions_revoked", f"operator:{caller.id}", sessions=ended)
    return {"sessions_ended": ended}
