"""API keys: scopes and expiry, the per-process cache of verified keys, revocation, `patron api-keys`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from typer.testing import CliRunner

from patron.api.app import create_app
from patron.auth import service as auth_service
from patron.auth.schemas import ApiKeyCreate
from patron.auth.service import create_api_key, resolve_api_key, revoke_api_key
from patron.cli.main import app as cli
from patron.db.engine import OperationalStore
from patron.errors import AuthenticationError
from patron.settings import PLACEHOLDER_MASTER_KEY
from tests.api.conftest import assert_problem
from tests.conftest import PG_URL
from tests.security.conftest import Shop, build_shop

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    shop = build_shop(tmp_path_factory.mktemp("keys") / "home", api_key_cache_seconds=CACHE_SECONDS)
    yield shop
    shop.runtime.close()


@pytest.fixture(scope="module")
def app(keyed: Shop) -> FastAPI:
    return create_app(keyed.runtime)


def _key(shop: Shop, name: str, *, expires_at: datetime | None = None, scopes: tuple[str, ...] = ("kpis:read",)) -> Any:
    data = ApiKeyCreate(name=name, role="analyst", scopes=list(scopes), expires_at=expires_at)  # type: ignore[arg-type]
    return create_api_key(shop.runtime.store, data, None)


class KeyLookups:
    """Counts the statements that read the api_keys table, through the store's engine."""

    def __init__(self, store: OperationalStore) -> None:
        self.count = 0
        self._engine = store.engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "api_keys" in statement:
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


@pytest.fixture
def lookups(keyed: Shop) -> Iterator[KeyLookups]:
    counter = KeyLookups(keyed.runtime.store)
    yield counter
    counter.close()


def test_a_verified_key_is_served_from_memory_without_asking_the_store(
    app: FastAPI, keyed: Shop, lookups: KeyLookups
) -> None:
    created = _key(keyed, "cached")
    before = lookups.count
    with TestClient(app) as client:
        began = time.monotonic()
        responses = [client.get("/api/v1/auth/me", headers={"X-API-Key": created.key}) for _ in range(20)]
        elapsed = time.monotonic() - began

    assert {r.status_code for r in responses} == {200}
    # one query for the first request, then one per lapse of the cache time (none on an idle machine)
    assert lookups.count - before <= 1 + int(elapsed / CACHE_SECONDS)


def test_the_cache_honours_expiry_to_the_instant(app: FastAPI, keyed: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    created = _key(keyed, "short-lived", expires_at=expires)
    headers = {"X-API-Key": created.key}
    with TestClient(app) as client:
        before = client.get("/api/v1/auth/me", headers=headers)
        # the wall clock passes the expiry at once (however slow the machine), within the cache time
        monkeypatch.setattr(auth_service, "utcnow", lambda: expires + timedelta(microseconds=1))
        after = client.get("/api/v1/auth/me", headers=headers)

    assert before.status_code == 200
    assert "expired" in assert_problem(after, 401)["detail"]


def test_revoking_through_the_api_takes_effect_at_once_in_this_process(app: FastAPI, keyed: Shop) -> None:
    created = _key(keyed, "revoked here")
    admin = {"X-API-Key": keyed.admin_key}
    with TestClient(app) as client:
        before = client.get("/api/v1/auth/me", headers={"X-API-Key": created.key})
        revoked = client.delete(f"/api/v1/api-keys/{created.id}", headers=admin)
        after = client.get("/api/v1/auth/me", headers={"X-API-Key": created.key})

    assert before.status_code == 200 and revoked.status_code == 200
    assert "revoked" in assert_problem(after, 401)["detail"]


def test_a_revocation_elsewhere_is_seen_within_the_cache_time(app: FastAPI, keyed: Shop) -> None:
    """Another process (here: another store handle, with a cache of its own) revokes the key."""
    created = _key(keyed, "revoked elsewhere")
    headers = {"X-API-Key": created.key}
    elsewhere = OperationalStore(keyed.runtime.settings.operational_url)
    try:
        with elsewhere.session() as sess:  # its first connection is made before the clock matters
            sess.execute(text("SELECT 1"))
        with TestClient(app) as client:
            first_sent = time.monotonic()
            assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
            revoked_at = time.monotonic()
            revoke_api_key(elsewhere, created.id)
            stale = client.get("/api/v1/auth/me", headers=headers)
            stale_done = time.monotonic()
            time.sleep(max(0.0, revoked_at + CACHE_SECONDS + 0.05 - time.monotonic()))
            fresh = client.get("/api/v1/auth/me", headers=headers)
    finally:
        elsewhere.dispose()

    if stale_done < first_sent + CACHE_SECONDS:  # answered within the cache time of the first check
        assert stale.status_code == 200  # the documented latency: this worker verified the key < 1 s ago
    assert "revoked" in assert_problem(fresh, 401)["detail"]


def test_without_a_cache_time_every_lookup_asks_the_store(keyed: Shop, lookups: KeyLookups) -> None:
    created = _key(keyed, "uncached")
    before = lookups.count

    for _ in range(3):
        resolve_api_key(keyed.runtime.store, created.key)
    asked = lookups.count - before
    revoke_api_key(keyed.runtime.store, created.id)

    assert asked == 3
    with pytest.raises(AuthenticationError, match="revoked"):
        resolve_api_key(keyed.runtime.store, created.key, cache_seconds=60)


def test_scopes_narrow_the_role(app: FastAPI, keyed: Shop) -> None:
    created = _key(keyed, "kpis only", scopes=("kpis:read",))
    with TestClient(app) as client:
        kpis = client.get("/api/v1/kpis", headers={"X-API-Key": created.key})
        members = client.get("/api/v1/members", headers={"X-API-Key": created.key})

    assert kpis.status_code == 200
    assert "members:read" in assert_problem(members, 403)["detail"]


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def patron(keyed: Shop) -> Any:
    env = {
        "PATRON_HOME": str(keyed.runtime.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
    }
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_cli_creates_lists_and_revokes_keys_with_scopes_and_expiry(patron: Any, app: FastAPI) -> None:
    expired_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    made = patron("api-keys", "create", "--name", "cli key", "--role", "marketer", "--scope", "kpis:read", "--json")
    old = patron(
        "api-keys", "create", "--name", "cli old", "--role", "marketer", "--scope", "kpis:read",
        "--expires", expired_at, "--json",
    )  # fmt: skip
    created, expired = json.loads(made.stdout), json.loads(old.stdout)
    listed = json.loads(patron("api-keys", "list", "--json").stdout)
    table = patron("api-keys", "list")
    with TestClient(app) as client:
        works = client.get("/api/v1/kpis", headers={"X-API-Key": created["key"]})
        too_late = client.get("/api/v1/kpis", headers={"X-API-Key": expired["key"]})
    revoked = patron("api-keys", "revoke", str(created["id"]), "--json")
    missing = patron("api-keys", "revoke", "999999")
    time.sleep(CACHE_SECONDS + 0.05)  # the CLI is another process: the server notices within the cache time
    with TestClient(app) as client:
        after = client.get("/api/v1/kpis", headers={"X-API-Key": created["key"]})

    by_id = {k["id"]: k for k in listed}
    assert by_id[created["id"]]["scopes"] == ["kpis:read"] and by_id[created["id"]]["revoked_at"] is None
    assert by_id[expired["id"]]["expires_at"] is not None
    assert all("key" not in k for k in listed)
    assert created["key"] not in table.stdout and "cli key" in table.stdout
    assert works.status_code == 200
    assert "expired" in assert_problem(too_late, 401)["detail"]
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["revoked_at"] is not None
    assert missing.exit_code == 1 and "API key 999999 does not exist" in missing.stderr
    assert "revoked" in assert_problem(after, 401)["detail"]
