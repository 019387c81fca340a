"""Rendering console pages: Jinja2 (autoescaped), language, CSRF cookie, headers."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from patron.console.assets import vendor_available
from patron.console.csrf import CSRF_COOKIE, new_nonce, token_for, valid_nonce
from patron.console.i18n import LANGUAGES, Translator, fmt_decimal, fmt_int, fmt_percent, negotiate
from patron.runtime import Runtime

__all__ = ["LANG_COOKIE", "current_path", "language_of", "render", "security_headers", "set_csrf_cookie"]

LANG_COOKIE = "patron_lang"
_TEMPLATES = Path(__file__).with_name("templates")
# Scripts only from our origin; ECharts tooltips style their HTML inline.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _day(value: date | datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


def _minute(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update({"int": fmt_int, "dec": fmt_decimal, "pct": fmt_percent, "day": _day, "minute": _minute})
    return env


_env = _environment()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def language_of(request: Request) -> str:
    """Return the language cookie if valid, else the best match for Accept-Language."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def current_path(request: Request) -> str:
    """Path and query of the request, for ``next=`` links."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def security_headers(response: Response) -> None:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def set_csrf_cookie(response: Response, runtime: Runtime, nonce: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=runtime.settings.secure_cookies, path="/"
    )


def _language_links(request: Request, language: str) -> list[dict[str, Any]]:
    here = quote(current_path(request), safe="")
    translate = Translator(language)
    return [
        {
            "code": code,
            "label": translate(f"lang.{code}"),
            "href": f"/lang/{code}?next={here}",
            "active": code == language,
        }
        for code in LANGUAGES
    ]


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render a page with the shared context; issue a CSRF nonce if the browser has none."""
    runtime = runtime_of(request)
    language = language_of(request)
    nonce = request.cookies.get(CSRF_COOKIE)
    fresh = not valid_nonce(nonce)
    if fresh or nonce is None:
        nonce = new_nonce()
    shared = {
        "t": Translator(language),
        "lang": language,
        "languages": _language_links(request, language),
        "csrf_token": token_for(runtime.settings, nonce),
        "charts_available": vendor_available(),
        "user": None,
        "active": "",
        "build": None,
    }
    response = HTMLResponse(_env.get_template(template).render({**shared, **context}), status_code=status)
    security_headers(response)
    if fresh:
        set_csrf_cookie(response, runtime, nonce)
    return response
