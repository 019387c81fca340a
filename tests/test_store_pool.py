"""The operational store's connection pool: its size comes from the settings and covers the web server's threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from patron.db.engine import OperationalStore
from patron.errors import StoreError
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


def _pg_store(**pool: int) -> OperationalStore:
    url = os.environ.get("PATRON_TEST_DATABASE_URL")
    if not url:
        pytest.skip("autocommit cursors exist on PostgreSQL only")
    return OperationalStore(url, **pool)


def _backend(store: OperationalStore) -> int:
    with store.autocommit_cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return int(cur.fetchone()[0])


def test_an_autocommit_cursor_commits_each_statement_and_its_connection_is_kept() -> None:
    store = _pg_store()
    table = f"pool_probe_{os.getpid()}"
    try:
        with store.autocommit_cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (n integer)")
            cur.execute(f"INSERT INTO {table} VALUES (1)")
        with store.engine.connect() as other:  # another connection sees it: committed
            assert other.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1
        first = _backend(store)
        with pytest.raises(psycopg.errors.DivisionByZero), store.autocommit_cursor() as cur:
            cur.execute("SELECT 1 / 0")
        assert _backend(store) == first  # a failed statement leaves the connection usable: it is kept
    finally:
        with store.autocommit_cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        store.dispose()


def test_a_broken_autocommit_connection_is_not_handed_out_again() -> None:
    store = _pg_store()
    try:
        first = _backend(store)
        with store.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(psycopg.OperationalError), store.autocommit_cursor() as cur:  # the server closed it
            cur.execute("SELECT 1")
        assert _backend(store) != first  # a new connection, not the broken one
    finally:
        store.dispose()


def test_a_forked_child_opens_its_own_autocommit_connection() -> None:
    store = _pg_store()
    try:
        parent = _backend(store)  # the parent's connection now waits on the stack
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # the child reports its backend, or -1 if anything fails, and exits at once
            try:
                os.write(writer, str(_backend(store)).encode())
            except BaseException:
                os.write(writer, b"-1")
            finally:
                os._exit(0)
        os.close(writer)
        os.waitpid(child, 0)
        with os.fdopen(reader) as answer:
            child_backend = int(answer.read())
        assert child_backend not in (-1, parent)
        assert _backend(store) == parent  # the parent's connection is intact and still its own
    finally:
        store.dispose()


def test_autocommit_cursors_are_bounded_by_the_pool_settings() -> None:
    store = _pg_store(pool_size=1, max_overflow=1)
    assert store._autocommit is not None
    store._autocommit.timeout = 0.3
    try:
        with store.autocommit_cursor(), store.autocommit_cursor():
            with pytest.raises(StoreError, match="no database connection free"), store.autocommit_cursor():
                pass  # pragma: no cover - never reached
            got = threading.Event()

            def third() -> None:
                with store.autocommit_cursor() as cur:
                    cur.execute("SELECT 1")
                    got.set()

            store._autocommit.timeout = 10
            waiter = threading.Thread(target=third)
            waiter.start()
            assert not got.wait(0.3)  # both in use: the third caller waits
        waiter.join(10)
        assert got.is_set()  # and gets one once they are put back
    finally:
        store.dispose()
