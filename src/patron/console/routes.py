"""The web console: server-rendered pages in English and Simplified Chinese.

Routes: ``/login``, ``/logout``, ``/`` (dashboard), ``/members``,
``/members/{member_key}`` (and its ``/reveal`` form), ``/cohorts``, ``/funnels``, ``/segments``,
``/forecasts``, ``/lang/{code}`` and static files under ``/static``; rule tags
(``tag_routes``) and alerts (``alert_routes``) have modules of their own.
Pages use the API's session cookie; forms carry a CSRF token (see ``csrf``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron.analytics.artefacts import BuildReader
from patron.api.deps import SESSION_COOKIE, Rt, audit, client_ip
from patron.api.errors import problem
from patron.api.security import limits_of
from patron.auth.rules import Permission
from patron.auth.service import Principal, authenticate, open_session, revoke_session
from patron.console import alert_routes, loyalty_routes, privacy_routes, recs_routes, tag_routes
from patron.console.access import (
    ConsoleForbiddenError,
    CsrfRejectedError,
    LoginRequiredError,
    User,
    can,
    check_csrf,
    current_reader,
    page_user,
    redirect,
    require,
    session_principal,
)
from patron.console.cohort_view import CohortFilters, cohorts_context
from patron.console.csrf import CSRF_FIELD, new_nonce
from patron.console.forecast_view import ForecastFilters, forecasts_context
from patron.console.funnel_view import FunnelFilters, funnels_context
from patron.console.i18n import LANGUAGES, Translator
from patron.console.member_insight import member_insight
from patron.console.rendering import LANG_COOKIE, language_of, render, runtime_of, set_csrf_cookie
from patron.console.segment_view import SegmentFilters, segments_context
from patron.console.views import MemberFilters, build_info, dashboard_context, members_context
from patron.errors import AuthenticationError, MfaRequiredError, NotFoundError, RateLimitedError, ValidationError
from patron.members.service import member_view, personal_query_kind, personal_view, reveal_reason
from patron.runtime import Runtime

__all__ = ["install_console", "router", "safe_next"]

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).with_name("static")
_MEMBER_KEY = re.compile(r"^m[0-9a-f]{16}$")
_LANG_MAX_AGE = 365 * 24 * 3600
_NO_RETURN = ("/login", "/logout", "/lang/")


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


# --- sign-in, sign-out, language -------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, runtime: Rt, next_path: Annotated[str, Query(alias="next")] = "/", signed_out: str = ""
) -> Response:
    if session_principal(request, runtime) is not None:
        return redirect(safe_next(next_path))
    context = {"next": safe_next(next_path), "failed": False, "username": "", "signed_out": signed_out == "1"}
    return render(request, "login.html", context)


def _login_failed(
    request: Request, username: str, next_path: str, reason: str = "failed", status: int = 401
) -> Response:
    context = {"next": safe_next(next_path), "failed": reason, "username": username, "signed_out": False}
    return render(request, "login.html", context, status=status)


@router.post("/login")
def login(
    request: Request,
    runtime: Rt,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    otp: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    check_csrf(request, runtime, csrf_token)
    username = username.strip()
    limited = limits_of(request.app).login.take(client_ip(request) or "unknown")  # shared with the API's sign-in
    request.state.rate_limit = limited
    if not limited.allowed:
        return _login_failed(request, username[:64], next_path, "locked", 429)
    if not username or not password or len(username) > 64 or len(password) > 1024:
        return _login_failed(request, username[:64], next_path)
    try:
        principal = authenticate(
            runtime.store, username, password, otp.strip()[:6] or None, cipher=runtime.cipher, settings=runtime.settings
        )
    except RateLimitedError:
        audit(request, runtime, f"operator:{username}", "auth.login_failed", channel="console", reason="locked")
        return _login_failed(request, username, next_path, "locked", 429)
    except MfaRequiredError:
        audit(request, runtime, f"operator:{username}", "auth.login_failed", channel="console", reason="otp")
        return _login_failed(request, username, next_path, "otp")
    except AuthenticationError:
        audit(request, runtime, f"operator:{username}", "auth.login_failed", channel="console")
        return _login_failed(request, username, next_path)
    response = redirect(safe_next(next_path))
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
    check_csrf(request, runtime, csrf_token)
    principal = session_principal(request, runtime)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        revoke_session(runtime.store, token)
    response = redirect("/login?signed_out=1")
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
    response = redirect(safe_next(next_path))
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
    require(user, "kpis:read", "segments:read")
    context = {"user": page_user(user), "active": "dashboard"}
    reader = current_reader(runtime)
    if reader is None:
        return render(request, "dashboard.html", {**context, "no_build": True})
    translate = Translator(language_of(request))
    return render(request, "dashboard.html", {**context, "no_build": False, **dashboard_context(reader, translate)})


@router.get("/members")
def members(request: Request, runtime: Rt, user: User) -> Response:
    require(user, "members:read")
    filters = MemberFilters.parse(request.query_params)
    kind = personal_query_kind(filters.q)
    personal_search = can(user, "members:personal")
    if kind == "email" or (kind is not None and personal_search):
        # searching by e-mail or phone is for roles that may see personal fields; others match customer ids
        require(user, "members:personal")
        audit(request, runtime, user.label, "member.personal_search", None, channel="console", by=kind)
    context = {"user": page_user(user), "active": "members", "filters": filters}
    reader = current_reader(runtime)
    if reader is None:
        return render(request, "members.html", {**context, "no_build": True})
    translate = Translator(language_of(request))
    return render(
        request,
        "members.html",
        {
            **context,
            "no_build": False,
            **members_context(runtime, reader, filters, translate, personal_search=personal_search),
        },
    )


@router.get("/members/{member_key}")
def member(request: Request, runtime: Rt, user: User, member_key: str) -> Response:
    return _member_page(request, runtime, user, member_key)


@router.post("/members/{member_key}/reveal")
def reveal_member(
    request: Request,
    runtime: Rt,
    user: User,
    member_key: str,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Support sees the personal fields in full for a reason, which the audit entry keeps."""
    check_csrf(request, runtime, csrf_token)
    require(user, "members:read", "members:personal")
    try:
        given = reveal_reason(reason)
    except ValidationError:
        given = None
    if given is None:
        return _member_page(request, runtime, user, member_key, reason_refused=True)
    return _member_page(request, runtime, user, member_key, reason=given)


def _member_page(
    request: Request,
    runtime: Runtime,
    user: Principal,
    member_key: str,
    *,
    reason: str | None = None,
    reason_refused: bool = False,
) -> Response:
    require(user, "members:read")
    context: dict[str, Any] = {"user": page_user(user), "active": "members", "member_key": member_key}
    reader = current_reader(runtime)
    if reader is None:
        return render(request, "member.html", {**context, "no_build": True})
    if not _MEMBER_KEY.match(member_key):
        return _not_found(request, member=True)
    shown = personal_view(user.role, user.scopes, reason=reason) if can(user, "members:personal") else "none"
    try:
        view = member_view(runtime, reader, member_key, include_personal=shown != "none", masked=shown == "masked")
    except NotFoundError:
        return _not_found(request, member=True)
    if shown != "none":
        given = {} if reason is None else {"reason": reason}
        audit(request, runtime, user.label, "member.personal_read", member_key, channel="console", view=shown, **given)
    context["reveal_refused"] = reason_refused
    translate = Translator(language_of(request))
    insight = member_insight(reader, view, translate)
    context |= {"no_build": False, "build": build_info(reader), "view": view, "insight": insight}
    context |= {
        "loyalty": loyalty_routes.member_panel(runtime, user, member_key),
        "recs": recs_routes.member_panel(runtime, user, member_key, view.profile.segment),
        "notices": loyalty_routes.loyalty_notices(request, translate)
        + privacy_routes.privacy_notices(request, translate),
        "privacy": privacy_routes.member_panel(runtime, user, member_key),
    }
    return render(request, "member.html", context, status=422 if reason_refused else 200)


def _analysis_page(
    request: Request,
    runtime: Runtime,
    user: Principal,
    permission: Permission,
    name: str,
    filters: Any,
    build_page: Callable[[BuildReader, Any, Translator], dict[str, Any]],
) -> Response:
    """A page over the current build: permission, filters, a friendly page when nothing is built yet.

    A page whose context carries ``errors`` is answered 422: the form is shown again with what could
    not be read.
    """
    require(user, permission)
    context = {"user": page_user(user), "active": name, "filters": filters}
    reader = current_reader(runtime)
    if reader is None:
        return render(request, f"{name}.html", {**context, "no_build": True})
    page = build_page(reader, filters, Translator(language_of(request)))
    status = 422 if page.get("errors") else 200
    context |= {"no_build": False, "build": build_info(reader), **page}
    return render(request, f"{name}.html", context, status=status)


@router.get("/cohorts")
def cohorts(request: Request, runtime: Rt, user: User) -> Response:
    filters = CohortFilters.parse(request.query_params)
    return _analysis_page(request, runtime, user, "kpis:read", "cohorts", filters, cohorts_context)


@router.get("/funnels")
def funnels(request: Request, runtime: Rt, user: User) -> Response:
    filters = FunnelFilters.parse(request.query_params)
    return _analysis_page(request, runtime, user, "kpis:read", "funnels", filters, funnels_context)


@router.get("/segments")
def segments(request: Request, runtime: Rt, user: User) -> Response:
    filters = SegmentFilters.parse(request.query_params)
    return _analysis_page(request, runtime, user, "segments:read", "segments", filters, segments_context)


@router.get("/forecasts")
def forecasts(request: Request, runtime: Rt, user: User) -> Response:
    filters = ForecastFilters.parse(request.query_params)
    return _analysis_page(request, runtime, user, "forecasts:read", "forecasts", filters, forecasts_context)


# --- errors ----------------------------------------------------------------------


def _not_found(request: Request, *, member: bool = False) -> Response:
    kind = "member_not_found" if member else "not_found"
    return render(request, "error.html", {"kind": kind, "signed_in": True}, status=404)


def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return redirect(f"/login?next={quote(safe_next(exc.next_path), safe='')}")


def _forbidden(request: Request, _exc: Exception) -> Response:
    return render(request, "error.html", {"kind": "forbidden", "signed_in": True}, status=403)


def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    signed_in = session_principal(request, runtime_of(request)) is not None
    return render(request, "error.html", {"kind": "csrf", "signed_in": signed_in}, status=403)


def _http_error(request: Request, exc: Exception) -> Response:
    """A browser asking for a console page that does not exist gets the console's page; the API keeps JSON."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    wants_page = "text/html" in request.headers.get("accept", "") and not path.startswith(("/api/", "/openapi"))
    if wants_page and exc.status_code in (404, 405):
        signed_in = session_principal(request, runtime_of(request)) is not None
        return render(request, "error.html", {"kind": "not_found", "signed_in": signed_in}, status=exc.status_code)
    return problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))


def install_console(app: FastAPI) -> None:
    """Mount the console's pages, static files and error handlers on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
    for module in (
        tag_routes,
        alert_routes,
        loyalty_routes,
        recs_routes,
        privacy_routes,
    ):
        app.include_router(module.router)
    app.add_exception_handler(LoginRequiredError, _to_login)
    app.add_exception_handler(ConsoleForbiddenError, _forbidden)
    app.add_exception_handler(CsrfRejectedError, _csrf_rejected)
    app.add_exception_handler(StarletteHTTPException, _http_error)
