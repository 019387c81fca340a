"""The operational store's connection pool: its size comes from the settings and covers the web server's threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from patron.db.engine import OperationalStore
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY, Settings


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'pool.db'}"]
    if os.environ.get("PATRON_TEST_DATABASE_URL"):
        urls.append(os.environ["PATRON_TEST_DATABASE_URL"])
    return urls


def test_the_default_pool_covers_forty_threads_at_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, env="development", master_key=PLACEHOLDER_MASTER_KEY)
    assert settings.db_pool_size + settings.db_max_overflow >= 40  # anyio's worker threads per process
    for url in _urls(tmp_path):
        store = OperationalStore(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
        try:
            held = [store.engine.connect() for _ in range(40)]  # what 40 request threads may hold together
            for conn in held:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
            for conn in held:
                conn.close()
            assert store.engine.pool.checkedout() == 0
        finally:
            store.dispose()


def test_a_pool_holds_what_the_settings_say_and_no_more(tmp_path: Path) -> None:
    url = _urls(tmp_path)[-1]
    settings = Settings(
        home=tmp_path,
        env="development",
        master_key=PLACEHOLDER_MASTER_KEY,
        database_url=url,
        db_pool_size=2,
        db_max_overflow=1,
    )
    runtime = Runtime(settings)
    engine = runtime.store.engine
    try:
        held = [engine.connect() for _ in range(3)]
        engine.pool._timeout = 0.2  # type: ignore[attr-defined]  # fail fast instead of the default 30 s
        with pytest.raises(PoolTimeout):
            engine.connect()
        released = threading.Event()

        def give_back() -> None:
            held.pop().close()
            released.set()

        threading.Thread(target=give_back).start()
        assert released.wait(5)
        engine.connect().close()  # a returned connection serves the next caller
        for conn in held:
            conn.close()
    finally:
        runtime.close()
