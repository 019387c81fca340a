"""Every operation of the OpenAPI schema, fed generated valid and invalid input by Schemathesis.

Runs against a copy of the session's online-retail data directory (operators,
keys and writes stay in the copy) with an admin API key holding every
permission. Each operation gets a bounded, derandomized number of examples
per mode, so CI is repeatable and the whole run stays within minutes. The
checks: no 5xx; a documented response matches its schema; invalid input is
refused. String formats are not checked in responses: the shop's history
carries its wall-clock time without an offset (docs/import.md), which JSON
Schema's ``date-time`` does not admit; types, required fields and enums are.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from patron.api.app import create_app
from patron.auth.rules import PERMISSIONS
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key
from patron.runtime import Runtime
from tests.conftest import make_settings

EXAMPLES = 6  # per operation and mode
SLOW_EXAMPLES = 2  # operations that train, build or run jobs
SLOW = ("/recs/versions", "/jobs/", "/alerts/check", "/privacy/requests/{request_id}/execute")
CONFIG = SchemathesisConfig.from_dict({"checks": {"response_schema_conformance": {"validate-formats": False}}})
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance],
    GenerationMode.NEGATIVE: [not_a_server_error, negative_data_rejection],
}


@pytest.fixture(scope="module")
def hostile_copy(retail: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A copy of the online-retail data directory (SQLite store, warehouse, builds)."""
    home = tmp_path_factory.mktemp("schemathesis") / "home"
    shutil.copytree(retail.settings.home, home)
    runtime = Runtime(make_settings(home))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def app(hostile_copy: Runtime) -> FastAPI:
    return create_app(hostile_copy)


def _key(runtime: Runtime, name: str) -> Any:
    data = ApiKeyCreate(name=name, role="admin", scopes=list(PERMISSIONS))
    return create_api_key(runtime.store, data, None)


def _described(exc: BaseException, depth: int = 0) -> str:
    """The failure with every exception it groups or was caused by (Hypothesis wraps the real one)."""
    text = f"{type(exc).__name__}: {exc}"[:4000]
    inner = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else []
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None and e not in inner]
    if depth < 4:
        text += "".join("\n  " + _described(e, depth + 1).replace("\n", "\n  ") for e in inner)
    return text


def _examples(path: str) -> int:
    return SLOW_EXAMPLES if any(part in path for part in SLOW) else EXAMPLES


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str], pinned: dict[str, Any]) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=pinned or None)

    @settings(
        max_examples=_examples(operation.path),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS[mode])

    exercise()


@pytest.mark.slow
def test_no_operation_answers_5xx_breaks_its_schema_or_accepts_invalid_input(
    app: FastAPI, hostile_copy: Runtime
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    admin = _key(hostile_copy, "schemathesis")
    spare = _key(hostile_copy, "revocable")  # DELETE /api-keys/{key_id} revokes this one, never the admin's
    headers = {"X-API-Key": admin.key}
    failures: list[str] = []
    timings: dict[str, float] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        pinned = {"key_id": spare.id} if operation.path == "/api/v1/api-keys/{key_id}" else {}
        began = time.monotonic()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, headers, pinned)
            except Unsatisfiable:
                pass  # nothing to make invalid: the operation takes no input
            except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them together
                failures.append(f"{operation.label} [{mode.value}]: {_described(exc)}")
        timings[operation.label] = time.monotonic() - began

    slowest = sorted(timings.items(), key=lambda item: -item[1])[:5]
    assert len(operations) >= 100, "the schema lost its operations"
    if failures:
        pytest.fail("\n\n".join(failures) + f"\n\nslowest: {slowest}", pytrace=False)


def test_the_schema_documents_every_route_of_the_api(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    labels = {result.ok().label for result in schema.get_all_operations()}

    assert "GET /api/v1/members/{member_key}" in labels
    assert "POST /api/v1/auth/login" in labels
    assert all(label.split(" ", 1)[1].startswith(("/api/v1/", "/health")) for label in labels)
