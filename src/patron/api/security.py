"""Web hardening around every request: request ids, trusted proxies, body limits, sign-in limits, headers, errors.

``WebSecurity`` is a plain ASGI middleware (no per-request task or buffering
of ordinary responses), installed by ``install_web_security``:

- every response carries ``X-Request-ID``; an unhandled exception is answered
  with a generic 500 (problem JSON, or a small HTML page for the console)
  naming only that id, and logged with it, never with a traceback or SQL in
  the response;
- ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the
  addresses in ``PATRON_TRUSTED_PROXIES``;
- request bodies are limited (413): ``max_request_bytes``, or
  ``max_upload_bytes`` under ``/api/v1/imports``;
- a NUL character in a path, a query value, a JSON body or a form is refused
  (422): no text may hold one, and PostgreSQL cannot store it;
- ``POST /api/v1/auth/login`` is rate-limited per client address (429);
- headers: ``nosniff``, ``frame-ancestors 'none'`` (CSP and
  ``X-Frame-Options``), a CSP for responses that set none (API responses may
  load nothing; the API docs page may run only its own inline script, by
  hash), ``Cache-Control: no-store`` on everything but static files, HSTS
  on requests that came over TLS, and the RateLimit headers of an API key.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.api.limits import Decision, Limits, rate_limit_headers
from patron.settings import Settings

__all__ = [
    "API_CSP",
    "LOGIN_PATH",
    "REQUEST_ID_HEADER",
    "UPLOAD_PREFIX",
    "BodyTooLargeError",
    "NulCharacterError",
    "WebSecurity",
    "install_web_security",
    "limits_of",
]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
UPLOAD_PREFIX = "/api/v1/imports"
LOGIN_PATH = "/api/v1/auth/login"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API docs page (Swagger UI) loads its bundle from this CDN and runs one inline script, allowed by hash.
_DOCS_CDN = "https://cdn.jsdelivr.net"
_DOCS_CSP = (
    "default-src 'none'; script-src {hashes} " + _DOCS_CDN + "; style-src 'unsafe-inline' " + _DOCS_CDN + "; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)
_MAX_HTML_BUFFER = 1 << 20
_STATIC_PREFIX = "/static/"
_DEFAULT_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", API_CSP.encode()),
)
_NUL_MESSAGE = "contains a NUL character, which no text accepts"
# ``\u0000`` after an even number of backslashes (an odd one escapes the backslash instead), or a raw NUL
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")
_FORM_NUL = re.compile(rb"%00|\x00")
_NUL_TAIL = 64
_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Patron: error</title></head>
<body><main><h1>Something went wrong / 出错了</h1>
<p>The server could not complete the request. 服务器无法完成此请求。</p>
<p>Request id / 请求编号: <code>{request_id}</code></p>
<p><a href="/">Patron</a></p></main></body></html>
"""


class BodyTooLargeError(HTTPException):
    """The request body is over its limit (raised while the body is read; the API answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")


class NulCharacterError(HTTPException):
    """The request body holds a NUL character (raised while the body is read; the API answers 422)."""

    def __init__(self) -> None:
        super().__init__(422, "the request body contains a NUL character (\\u0000), which no text field accepts")


def limits_of(app: Any) -> Limits:
    """The rate limits installed on ``app`` (made from its runtime's settings on an app assembled by hand)."""
    limits: Limits | None = getattr(app.state, "limits", None)
    if limits is None:
        limits = Limits.from_settings(app.state.runtime.settings)
        app.state.limits = limits
    return limits


def _problem(status: int, title: str, detail: str, **extra: Any) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body).encode()


def _inline_script_hashes(html: bytes) -> str:
    found = _INLINE_SCRIPT.findall(html.decode("utf-8", "replace"))
    digests = (base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in found)
    return " ".join(f"'sha256-{digest}'" for digest in digests) or "'none'"


class WebSecurity:
    """The middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings, limits: Limits) -> None:
        self.app = app
        self.settings = settings
        self.limits = limits
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.hsts = f"max-age={settings.hsts_seconds}; includeSubDomains".encode() if settings.hsts_seconds else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._believe_proxy(scope)
        respond = _Responder(self, scope, send, secrets.token_hex(8))
        scope.setdefault("state", {})["request_id"] = respond.request_id
        limit = (
            self.settings.max_upload_bytes
            if scope["path"].startswith(UPLOAD_PREFIX)
            else self.settings.max_request_bytes
        )
        if await self._refused(scope, respond, limit):
            return
        try:
            await self.app(scope, _limited(receive, limit, _nul_pattern(scope)), respond.send)
        except BodyTooLargeError as exc:
            if respond.started:
                raise
            await respond.problem(413, "Content too large", exc.detail)
        except Exception:
            if respond.started:
                raise  # a response is under way and cannot be replaced; the server logs and closes it
            where = {"request_id": respond.request_id, "method": scope["method"], "path": scope["path"]}
            log.exception("unhandled error", extra=where)
            await respond.server_error()

    async def _refused(self, scope: Scope, respond: _Responder, limit: int) -> bool:
        """Answer what is refused before the app runs: a declared body over the limit, a NUL, a sign-in flood."""
        if _declared_length(scope) > limit:
            await respond.problem(413, "Content too large", BodyTooLargeError(limit).detail)
            return True
        if errors := _nul_in_url(scope):
            fields = ", ".join(".".join(e["loc"]) for e in errors)
            await respond.problem(422, "Invalid input", f"invalid field(s): {fields}", errors=errors)
            return True
        if scope["method"] == "POST" and scope["path"] == LOGIN_PATH:
            decision = self.limits.login.take(_client(scope))
            scope["state"]["rate_limit"] = decision
            if not decision.allowed:
                detail = f"too many sign-in attempts from this address: try again in {decision.retry_after} s"
                await respond.problem(429, "Too many requests", detail)
                return True
        return False

    def _believe_proxy(self, scope: Scope) -> None:
        """Take the client address and scheme from the forwarding headers of a trusted proxy."""
        client = scope.get("client")
        if not self.proxies or not client or not self._trusted(client[0]):
            return
        headers = Headers(scope=scope)
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto
        hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
        for hop in reversed(hops):  # the nearest address that is not one of our proxies is the client
            if not self._trusted(hop):
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    return  # not an address: keep the proxy's
                scope["client"] = (hop, 0)
                return

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def headers_for(self, scope: Scope, raw: list[tuple[bytes, bytes]], request_id: str) -> None:
        """Append the security headers a response's raw header list lacks."""
        present = {name.lower() for name, _ in raw}
        raw.append((b"x-request-id", request_id.encode()))
        raw.extend(header for header in _DEFAULT_HEADERS if header[0] not in present)
        if b"cache-control" not in present and not scope["path"].startswith(_STATIC_PREFIX):
            raw.append((b"cache-control", b"no-store"))
        if self.hsts and scope.get("scheme") == "https":
            raw.append((b"strict-transport-security", self.hsts))
        decision: Decision | None = scope.get("state", {}).get("rate_limit")
        if decision is not None:
            for name, value in rate_limit_headers(decision).items():
                if name.lower().encode() not in present:
                    raw.append((name.lower().encode(), value.encode()))


class _Responder:
    """One request's side of the middleware: adds headers on the way out, answers errors itself."""

    def __init__(self, owner: WebSecurity, scope: Scope, send: Send, request_id: str) -> None:
        self.owner = owner
        self.scope = scope
        self._send = send
        self.request_id = request_id
        self.started = False
        self._held: Message | None = None  # an HTML response without a CSP, held to hash its inline scripts
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            raw = message["headers"] = list(message.get("headers", ()))
            types = [value for name, value in raw if name.lower() in (b"content-security-policy", b"content-type")]
            html_without_csp = len(types) == 1 and types[0].startswith(b"text/html")
            self.owner.headers_for(self.scope, raw, self.request_id)
            if html_without_csp:
                self._held = message
                return
        elif message["type"] == "http.response.body" and self._held is not None:
            self._body += message.get("body", b"")
            if message.get("more_body", False) and len(self._body) <= _MAX_HTML_BUFFER:
                return
            await self._release(more_body=message.get("more_body", False))
            return
        await self._send(message)

    async def _release(self, *, more_body: bool) -> None:
        held, self._held = self._held, None
        assert held is not None
        headers = MutableHeaders(scope=held)
        headers["Content-Security-Policy"] = _DOCS_CSP.format(hashes=_inline_script_hashes(bytes(self._body)))
        await self._send(held)
        await self._send({"type": "http.response.body", "body": bytes(self._body), "more_body": more_body})

    async def problem(self, status: int, title: str, detail: str, **extra: Any) -> None:
        body = _problem(status, title, detail, **extra)
        await self._respond(status, body, "application/problem+json")

    async def server_error(self) -> None:
        accept = Headers(scope=self.scope).get("accept", "")
        if not self.scope["path"].startswith("/api/") and "text/html" in accept:
            page = _ERROR_PAGE.format(request_id=self.request_id).encode()
            await self._respond(500, page, "text/html; charset=utf-8")
            return
        detail = f"the server could not complete the request; quote request id {self.request_id} when reporting it"
        await self.problem(500, "Internal error", detail, request_id=self.request_id)

    async def _respond(self, status: int, body: bytes, media_type: str) -> None:
        headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
        start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        self.started = True
        self.owner.headers_for(self.scope, headers, self.request_id)
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed length before the app sees it
    return 0


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _nul_in_url(scope: Scope) -> list[dict[str, Any]]:
    """The path and the query parameters that hold a NUL character, as validation errors."""
    errors: list[dict[str, Any]] = []
    if "\x00" in scope["path"]:
        errors.append({"loc": ["path"], "msg": _NUL_MESSAGE})
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
        names = dict.fromkeys(name.replace("\x00", "") for name, value in pairs if "\x00" in name + value)
        errors += [{"loc": ["query", name], "msg": _NUL_MESSAGE} for name in names]
    return errors


def _nul_pattern(scope: Scope) -> re.Pattern[bytes] | None:
    """How a NUL character shows in this request's body, by its content type (uploads are not looked at)."""
    if scope["path"].startswith(UPLOAD_PREFIX):
        return None
    declared = next((value for name, value in scope["headers"] if name == b"content-type"), b"")
    media = declared.split(b";")[0].strip().lower()
    if media == b"application/json" or media.endswith(b"+json"):
        return _JSON_NUL
    if media == b"application/x-www-form-urlencoded":
        return _FORM_NUL
    return None


def _limited(receive: Receive, limit: int, nul: re.Pattern[bytes] | None) -> Receive:
    """``receive`` that raises BodyTooLargeError past ``limit`` bytes, NulCharacterError when ``nul`` matches."""
    seen = 0
    tail = b""  # the end of the previous chunk, so that a NUL escape split across chunks is seen

    async def limited() -> Message:
        nonlocal seen, tail
        message = await receive()
        if message["type"] == "http.request":
            body: bytes = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                raise BodyTooLargeError(limit)
            if nul is not None and nul.search(tail + body):
                raise NulCharacterError
            tail = (tail + body)[-_NUL_TAIL:]
        return message

    return limited


def install_web_security(app: FastAPI, settings: Settings) -> None:
    """Create the app's rate limits and add the middleware."""
    limits = Limits.from_settings(settings)
    app.state.limits = limits
    app.add_middleware(WebSecurity, settings=settings, limits=limits)
