"""Serving routes without FastAPI's per-request dependency walk, with the same checks and the same schema.

FastAPI resolves a route's dependency tree anew on every request: for a serving route (the runtime, the
caller, the permission, ten filters) the walk cost more than a whole list from the engine. A lean route
declares its parameters on its implementation exactly as a FastAPI route would (``Path``, ``Query``,
``Depends`` on a function of query parameters only); FastAPI matches and documents the route but resolves
nothing (``_DirectRoute``): its endpoint takes the request and

1. authorizes the caller: the same key or session lookup, rate limit and permission check as
   :func:`patron.api.deps.require`, so an anonymous caller still gets 401 before any 422;
2. checks the query string with FastAPI's own validation and runs its dependencies, once per distinct query
   string: the result is kept (a shop's pages ask with a handful of query strings; the cache is bounded) and
   a refusal never is;
3. checks the path parameters the same way, on every request;
4. calls the implementation with the runtime and the values.

Errors are FastAPI's: a ``RequestValidationError`` with every failing parameter (dependencies' first, then
path, then query, FastAPI's order), or the dependency's own error. The OpenAPI schema documents the declared
parameters as FastAPI documents them: a probe app serves the declared signature once, at import.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from patron.api.deps import authorize
from patron.auth.rules import Permission
from patron.runtime import Runtime

__all__ = ["LeanRoute", "lean_get"]

Impl = Callable[..., Awaitable[Any]]

QUERY_CACHE_SIZE = 4096  # distinct query strings kept per route; arbitrary ones must not grow it forever


class LeanRoute:
    """A GET route whose parameters are those ``impl`` declares after its first one (the runtime)."""

    def __init__(self, path: str, permission: Permission, impl: Impl) -> None:
        declared = inspect.signature(impl, eval_str=True)
        parameters = list(declared.parameters.values())
        if not parameters or parameters[0].annotation is not Runtime:
            raise TypeError(f"{impl.__name__}: the first parameter must be the runtime")
        self.path, self.permission, self.impl = path, permission, impl
        self.signature = _declared(declared.replace(parameters=parameters[1:]))
        dependant = get_dependant(path=path, call=self.signature)
        _check_lean(impl.__name__, dependant, top=True)
        for sub in dependant.dependencies:
            _check_lean(f"{impl.__name__}: {sub.name}", sub, top=False)
        self._path_fields = dependant.path_params
        self._query_fields = dependant.query_params
        self._dependencies = [(str(sub.name), sub) for sub in dependant.dependencies]
        self._queries: dict[bytes, dict[str, Any]] = {}
        self.openapi_extra = {"parameters": self._documented()}

    async def values(self, request: Request) -> dict[str, Any]:
        """The implementation's arguments after the runtime, checked as FastAPI checks them (query kept)."""
        raw: bytes = request.scope["query_string"]
        query = self._queries.get(raw)
        dependency_errors: list[Any] = []
        query_errors: list[Any] = []
        if query is None:
            query, dependency_errors, query_errors = await self._query(request)
        path, path_errors = request_params_to_args(self._path_fields, request.path_params)
        if dependency_errors or path_errors or query_errors:
            raise RequestValidationError([*dependency_errors, *path_errors, *query_errors])
        if raw not in self._queries:
            if len(self._queries) >= QUERY_CACHE_SIZE:
                self._queries.clear()
            self._queries[raw] = query
        return {**query, **path}

    async def _query(self, request: Request) -> tuple[dict[str, Any], list[Any], list[Any]]:
        """The query's values (its dependencies' results included), its dependencies' errors and its own.

        A dependency runs only when its own parameters are valid, as FastAPI runs it.
        """
        values: dict[str, Any] = {}
        dependency_errors: list[Any] = []
        for name, sub in self._dependencies:
            arguments, sub_errors = request_params_to_args(sub.query_params, request.query_params)
            if sub_errors:
                dependency_errors.extend(sub_errors)
                continue
            assert sub.call is not None
            result = sub.call(**arguments)
            values[name] = await result if inspect.isawaitable(result) else result
        own, own_errors = request_params_to_args(self._query_fields, request.query_params)
        return {**values, **own}, dependency_errors, own_errors

    async def endpoint(self, request: Request) -> Any:
        """What FastAPI calls: authorize, check the parameters, run the implementation."""
        await authorize(request, self.permission)
        values = await self.values(request)
        return await self.impl(request.app.state.runtime, **values)

    def _documented(self) -> list[dict[str, Any]]:
        probe = FastAPI()
        probe.get(self.path)(self.signature)
        parameters: list[dict[str, Any]] = probe.openapi()["paths"][self.path]["get"].get("parameters", [])
        if "$ref" in repr(parameters):  # the probe's components would be missing from the app's schema
            raise TypeError(f"{self.impl.__name__}: parameters that refer to schema components are not supported")
        return parameters


def lean_get(router: APIRouter, path: str, permission: Permission, **route: Any) -> Callable[[Impl], LeanRoute]:
    """Register ``impl(runtime, **parameters)`` on ``router`` as ``GET path``, served as a :class:`LeanRoute`.

    ``route`` takes what ``router.get`` takes (summary, response_model...) but ``openapi_extra``.
    """

    def register(impl: Impl) -> LeanRoute:
        lean = LeanRoute(path, permission, impl)

        async def endpoint(request: Request) -> Any:
            return await lean.endpoint(request)

        endpoint.__name__ = endpoint.__qualname__ = impl.__name__  # the schema's operation id stays the same
        endpoint.__doc__ = impl.__doc__
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            openapi_extra=lean.openapi_extra,
            route_class_override=_DirectRoute,
            **route,
        )
        return lean

    return register


class _DirectRoute(APIRoute):
    """A route FastAPI matches and documents but does not resolve: its endpoint takes the request itself.

    Even an endpoint declaring only the request costs FastAPI a dependency walk per request (four parameter
    resolutions, the query string parsed); the lean endpoint needs none of it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


def _declared(signature: inspect.Signature) -> Callable[..., Any]:
    """A callable with ``signature``, for FastAPI to read (it never calls it)."""

    def declared(**_: Any) -> None:
        raise NotImplementedError

    declared.__signature__ = signature  # type: ignore[attr-defined]
    return declared


def _check_lean(name: str, dependant: Dependant, *, top: bool) -> None:
    """Refuse what a lean route cannot check without the request: headers, cookies, bodies, nested dependencies."""
    special = (
        dependant.request_param_name,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    nested = dependant.dependencies if not top else [d for d in dependant.dependencies if d.dependencies]
    extra: Mapping[str, object] = {
        "header parameters": dependant.header_params,
        "cookie parameters": dependant.cookie_params,
        "a body": dependant.body_params,
        "nested dependencies": nested,
        "path parameters in a dependency": [] if top else dependant.path_params,
        "the request or the response": [s for s in special if s],
        "generator dependencies": [] if top or not _yields(dependant.call) else [dependant.call],
    }
    for what, found in extra.items():
        if found:
            raise TypeError(f"{name}: a lean route takes no {what}")


def _yields(call: Callable[..., Any] | None) -> bool:
    return inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)
