"""Who may see a console page: the signed-in operator, permissions, CSRF checks, the current build.

Every page module uses these; ``routes.install_console`` maps the errors
raised here to the sign-in redirect, the 403 page and the expired-form page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from patron.analytics.artefacts import BuildReader, reader_for
from patron.api.deps import SESSION_COOKIE, Rt
from patron.auth.rules import Permission, allowed
from patron.auth.service import Principal, resolve_session
from patron.console.csrf import CSRF_COOKIE, verify
from patron.console.rendering import current_path, security_headers
from patron.errors import AuthenticationError, NotFoundError
from patron.runtime import Runtime

__all__ = [
    "NAV_PERMISSIONS",
    "ConsoleForbiddenError",
    "CsrfRejectedError",
    "LoginRequiredError",
    "User",
    "can",
    "check_csrf",
    "console_user",
    "current_reader",
    "page_user",
    "redirect",
    "require",
    "session_principal",
]

# What each optional navigation link (and form) needs; a link is shown only to roles holding it.
NAV_PERMISSIONS: dict[str, Permission] = {
    "tags": "segments:read",
    "manage_tags": "tags:manage",
    "alerts": "alerts:read",
    "manage_alerts": "alerts:manage",
    "forecasts": "forecasts:read",
    "loyalty": "loyalty:read",
    "promotions": "loyalty:read",
    "recs": "recs:read",
    "privacy": "privacy:manage",
}


class LoginRequiredError(Exception):
    """A page needs a signed-in operator; carries where to return afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleForbiddenError(Exception):
    """The operator's role does not grant the page's permission."""


class CsrfRejectedError(Exception):
    """A form POST without a valid CSRF token."""


def session_principal(request: Request, runtime: Runtime) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return resolve_session(runtime.store, runtime.settings, token)
    except AuthenticationError:
        return None


def console_user(request: Request, runtime: Rt) -> Principal:
    principal = session_principal(request, runtime)
    if principal is None:
        raise LoginRequiredError(current_path(request))
    return principal


User = Annotated[Principal, Depends(console_user)]


def can(principal: Principal, permission: Permission) -> bool:
    """Whether the operator may; an admin who must still enrol a second factor may nothing."""
    return not principal.mfa_pending and allowed(principal.role, permission, principal.scopes)


def require(principal: Principal, *permissions: Permission) -> None:
    if not all(can(principal, p) for p in permissions):
        raise ConsoleForbiddenError(principal.role)


def check_csrf(request: Request, runtime: Runtime, token: str) -> None:
    if not verify(runtime.settings, request.cookies.get(CSRF_COOKIE), token):
        raise CsrfRejectedError


def redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    security_headers(response)
    return response


def current_reader(runtime: Runtime) -> BuildReader | None:
    try:
        return reader_for(runtime.settings.artefact_dir)
    except NotFoundError:
        return None


def page_user(user: Principal) -> dict[str, Any]:
    """The operator as templates see it: name, role and what the navigation may offer."""
    return {
        "name": user.name,
        "role": user.role,
        "can": {name: can(user, permission) for name, permission in NAV_PERMISSIONS.items()},
    }
