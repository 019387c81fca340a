"""The web application: REST API under /api/v1, console under /."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI

from patron import __version__
from patron.analytics.artefacts import current_manifest
from patron.api.errors import install_error_handlers
from patron.api.security import install_web_security
from patron.audit.changes import CaptureChanges
from patron.runtime import Runtime

__all__ = ["API_PREFIX", "ROUTERS", "create_app"]

API_PREFIX = "/api/v1"

# The API's routers (modules of patron.api.routers). A request is matched against the routes in this order,
# one after another, so the serving path (recommendations) comes first; the schema lists them in this order too.
ROUTERS: tuple[str, ...] = (
    "recs",
    "auth",
    "members",
    "analytics",
    "churn",
    "tags",
    "alerts",
    "forecasts",
    "points",
    "loyalty_program",
    "promotions",
    "imports",
    "consent",
    "privacy",
    "admin",
)


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """Build the app around a runtime (settings and stores)."""
    runtime = runtime or Runtime()
    app = FastAPI(
        title="Patron",
        version=__version__,
        description="Member intelligence and precision marketing for e-commerce.",
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(CaptureChanges)  # before -> after of each request's writes, for its audit entry
    install_web_security(app, runtime.settings)  # outermost: headers, limits and generic 500s for everything
    for name in ROUTERS:  # straight onto the app: each level of nested routers matches every path again
        app.include_router(importlib.import_module(f"patron.api.routers.{name}").router, prefix=API_PREFIX)

    @app.get("/health", tags=["health"], summary="Liveness and readiness")
    def health() -> dict[str, Any]:
        manifest = current_manifest(runtime.settings.artefact_dir)
        return {
            "status": "ok" if runtime.store.is_initialised() else "uninitialised",
            "version": __version__,
            "build": None if manifest is None else {"id": manifest["build_id"], "as_of": manifest["as_of"]},
        }

    try:
        from patron.console.routes import install_console
    except ImportError:  # console not installed in this build
        return app
    install_console(app)
    return app
