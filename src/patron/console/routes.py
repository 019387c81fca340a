"""The web console: server-rendered pages in English and Simplified Chinese.

Routes: ``/login``, ``/logout``, ``/`` (dashboard), ``/members``,
``/members/{member_key}``, ``/lang/{code}`` and static files under ``/static``.
Pages use the API's session cookie; forms carry a CSRF token (see ``csrf``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from patron.analytics.artefacts import BuildReader, reader_for
from patron.api.deps import SESSION_COOKIE, Rt, audit
from patron.auth.rules import Permission, allowed
from patron.auth.service import Principal, authenticate, open_session, resolve_session, revoke_session
from patron.console.csrf import CSRF_COOKIE, CSRF_FIELD, new_nonce, verify
from patron.console.i18n import LANGUAGES, Translator
from patron.console.rendering import (
    LANG_COOKIE,
    current_path,
    language_of,
    render,
    runtime_of,
    security_headers,
    set_csrf_cookie,
)
from patron.console.views import MemberFilters, build_info, dashboard_context, members_context
from patron.errors import AuthenticationError, NotFoundError
from patron.members.service import member_view
from patron.runtime import Runtime

__all__ = ["install_console", "router", "safe_next"]

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).with_name("static")
_MEMBER_KEY = re.compile(r"^m[0-9a-f]{16}$")
_LANG_MAX_AGE = 365 * 24 * 3600
_NO_RETURN = ("/login", "/logout", "/lang/")


class LoginRequiredError(Exception):
    """A page needs a signed-in operator; carries where to return afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleForbiddenError(Exception):
    """The operator's role does not grant the page's permission."""


class CsrfRejectedError(Exception):
    """A form POST without a valid CSRF token."""


def safe_next(value: str | None) -> str:
    """``value`` if it is a relative path on this site, else ``/`` (no open redirects)."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(_NO_RETURN):
        return "/"
    return value


def _session_principal(request: Request, runtime: Runtime) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return resolve_session(runtime.store, runtime.settings, token)
    except AuthenticationError:
        return None


def console_user(request: Request, runtime: Rt) -> Principal:
    principal = _session_principal(request, runtime)
    if principal is None:
        raise LoginRequiredError(current_path(request))
    return principal


User = Annotated[Principal, Depends(console_user)]


def _require(principal: Principal, *permissions: Permission) -> None:
    if not all(allowed(principal.role, p, principal.scopes) for p in permissions):
        raise ConsoleForbiddenError(principal.role)


def _check_csrf(request: Request, runtime: Runtime, token: str) -> None:
    if not verify(runtime.settings, request.cookies.get(CSRF_COOKIE), token):
        raise CsrfRejectedError


def _redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    security_headers(response)
    return response


def _reader(runtime: Runtime) -> BuildReader | None:
    try:
        return reader_for(runtime.settings.artefact_dir)
    except NotFoundError:
        return None


def _page_user(user: Principal) -> dict[str, str]:
    return {"name": user.name, "role": user.role}


# --- sign-in, sign-out, language -------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, runtime: Rt, next_path: Annotated[str, Query(alias="next")] = "/", signed_out: str = ""
) -> Response:
    if _session_principal(request, runtime) is not None:
        return _redirect(safe_next(next_path))
    context = {"next": safe_next(next_path), "failed": False, "username": "", "signed_out": signed_out == "1"}
    return render(request, "login.html", context)


def _login_failed(request: Request, username: str, next_path: str) -> Response:
    context = {"next": safe_next(next_path), "failed": True, "username": username, "signed_out": False}
    return render(request, "login.html", context, status=401)


@router.post("/login")
def login(
    request: Request,
    runtime: Rt,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    _check_csrf(request, runtime, csrf_token)
    username = username.strip()
    if not username or not password or len(username) > 64 or len(password) > 1024:
        return _login_failed(request, username[:64], next_path)
    try:
        principal = authenticate(runtime.store, username, password)
    except AuthenticationError:
        audit(request, runtime, f"operator:{username}", "auth.login_failed", channel="console")
        return _login_failed(request, username, next_path)
    response = _redirect(safe_next(next_path))
    response.set_cookie(
        SESSION_COOKIE,
        open_session(runtime.store, principal),
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
        max_age=runtime.settings.session_absolute_hours * 3600,
    )
    set_csrf_cookie(response, runtime, new_nonce())  # a fresh token for the signed-in session
    audit(request, runtime, principal.label, "auth.login", f"operator:{principal.id}", channel="console")
    return response


@router.post("/logout")
def logout(request: Request, runtime: Rt, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    _check_csrf(request, runtime, csrf_token)
    principal = _session_principal(request, runtime)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        revoke_session(runtime.store, token)
    response = _redirect("/login?signed_out=1")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=runtime.settings.secure_cookies)
    if principal is not None:
        audit(request, runtime, principal.label, "auth.logout", f"operator:{principal.id}", channel="console")
    return response


@router.get("/lang/{code}")
def switch_language(
    request: Request, runtime: Rt, code: str, next_path: Annotated[str, Query(alias="next")] = "/"
) -> Response:
    if code not in LANGUAGES:
        return _not_found(request)
    response = _redirect(safe_next(next_path))
    response.set_cookie(
        LANG_COOKIE,
        code,
        max_age=_LANG_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
    )
    return response


# --- pages -----------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, runtime: Rt, user: User) -> Response:
    _require(user, "kpis:read", "segments:read")
    context = {"user": _page_user(user), "active": "dashboard"}
    reader = _reader(runtime)
    if reader is None:
        return render(request, "dashboard.html", {**context, "no_build": True})
    translate = Translator(language_of(request))
    return render(request, "dashboard.html", {**context, "no_build": False, **dashboard_context(reader, translate)})


@router.get("/members")
def members(request: Request, runtime: Rt, user: User) -> Response:
    _require(user, "members:read")
    filters = MemberFilters.parse(request.query_params)
    context = {"user": _page_user(user), "active": "members", "filters": filters}
    reader = _reader(runtime)
    if reader is None:
        return render(request, "members.html", {**context, "no_build": True})
    translate = Translator(language_of(request))
    return render(
        request, "members.html", {**context, "no_build": False, **members_context(runtime, reader, filters, translate)}
    )


@router.get("/members/{member_key}")
def member(request: Request, runtime: Rt, user: User, member_key: str) -> Response:
    _require(user, "members:read")
    context: dict[str, Any] = {"user": _page_user(user), "active": "members", "member_key": member_key}
    reader = _reader(runtime)
    if reader is None:
        return render(request, "member.html", {**context, "no_build": True})
    if not _MEMBER_KEY.match(member_key):
        return _not_found(request, member=True)
    personal = allowed(user.role, "members:personal", user.scopes)
    try:
        view = member_view(runtime, reader, member_key, include_personal=personal)
    except NotFoundError:
        return _not_found(request, member=True)
    if personal:
        audit(request, runtime, user.label, "member.personal_read", member_key, channel="console")
    context |= {"no_build": False, "build": build_info(reader), "view": view}
    return render(request, "member.html", context)


# --- errors ----------------------------------------------------------------------


def _not_found(request: Request, *, member: bool = False) -> Response:
    kind = "member_not_found" if member else "not_found"
    return render(request, "error.html", {"kind": kind, "signed_in": True}, status=404)


def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return _redirect(f"/login?next={quote(safe_next(exc.next_path), safe='')}")


def _forbidden(request: Request, _exc: Exception) -> Response:
    return render(request, "error.html", {"kind": "forbidden", "signed_in": True}, status=403)


def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    signed_in = _session_principal(request, runtime_of(request)) is not None
    return render(request, "error.html", {"kind": "csrf", "signed_in": signed_in}, status=403)


def install_console(app: FastAPI) -> None:
    """Mount the console's pages, static files and error handlers on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
    app.add_exception_handler(LoginRequiredError, _to_login)
    app.add_exception_handler(ConsoleForbiddenError, _forbidden)
    app.add_exception_handler(CsrfRejectedError, _csrf_rejected)
