"""Fixtures for the vault and key tests: stores whose keyring lives in a key file, and member factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from patron.members.models import MemberIdentity
from patron.runtime import Runtime
from patron.settings import Settings
from tests.conftest import PG_URL, _reset_postgres


def settings_for(home: Path, master_key: str | None = None) -> Settings:
    """Settings of a data directory: the keyring in its key file unless ``master_key`` is given."""
    return Settings(home=home, env="development", master_key=master_key, database_url=PG_URL)


def open_twin(runtime: Runtime) -> Runtime:
    """Another process's view of the same data directory and stores."""
    s = runtime.settings
    return Runtime(Settings(home=s.home, env=s.env, master_key=s.master_key, database_url=s.database_url))


def fresh_runtime(settings: Settings) -> Runtime:
    """A runtime on a migrated, empty operational store."""
    settings.home.mkdir(parents=True, exist_ok=True)
    rt = Runtime(settings)
    rt.store.migrate()
    if PG_URL:
        _reset_postgres(rt)
        rt.keys.forget()
    return rt


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Runtime]:
    """A migrated store whose keyring is the data directory's key file (as `patron init` makes it)."""
    settings = settings_for(tmp_path / "home")
    settings.ensure_key_file()
    rt = fresh_runtime(settings)
    yield rt
    rt.close()


def person(i: int, *, tag: str = "") -> dict[str, str | None]:
    """Personal fields of member number ``i``."""
    return {
        "name": f"Person {i}{tag}",
        "email": f"person{i}{tag}@example.com",
        "phone": f"+44 7700 {i:06d}",
        "address": f"{i} High Street{tag}",
        "birthday": "1990-01-01" if i % 2 else None,
    }


def add_members(runtime: Runtime, n: int, *, prefix: str = "m", start: int = 0) -> list[str]:
    """Create ``n`` member identities; returns their member keys."""
    keys = [f"{prefix}{i:015d}" for i in range(start, start + n)]
    with runtime.store.engine.begin() as conn:
        conn.execute(insert(MemberIdentity), [{"member_key": k, "source": "test", "source_id": k} for k in keys])
    return keys
