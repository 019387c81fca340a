"""Errors as RFC 9457 problem details; the only place domain errors become HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    MfaRequiredError,
    NotFoundError,
    PatronError,
    RateLimitedError,
    StoreError,
    ValidationError,
    WarehouseBusyError,
)

__all__ = ["install_error_handlers", "problem"]

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[PatronError], int, str]] = [
    (AuthenticationError, 401, "Not authenticated"),
    (RateLimitedError, 429, "Too many requests"),
    (AuthorizationError, 403, "Forbidden"),
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (ValidationError, 422, "Invalid input"),
    (WarehouseBusyError, 503, "Warehouse busy"),
    (StoreError, 503, "Store unavailable"),
]


def problem(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


async def _patron_error(_request: Request, exc: Exception) -> JSONResponse:
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            errors = None
            if isinstance(exc, ValidationError) and exc.field:
                errors = [{"loc": exc.field.split("."), "msg": str(exc)}]
            response = problem(status, title, str(exc), errors)
            if isinstance(exc, RateLimitedError):
                response.headers["Retry-After"] = str(exc.retry_after)
            if isinstance(exc, MfaRequiredError):
                response.headers["X-Patron-MFA"] = "required"
            return response
    log.exception("unhandled domain error")
    return problem(500, "Internal error", "the server could not complete the request")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in err["loc"]], "msg": err["msg"]} for err in exc.errors()]
    fields = ", ".join(".".join(e["loc"]) for e in errors)
    return problem(422, "Invalid input", f"invalid field(s): {fields}", errors)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), str(exc.detail))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "the server could not complete the request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PatronError, _patron_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
