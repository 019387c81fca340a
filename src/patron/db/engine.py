"""Engine and session factory for the operational store."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from patron.errors import StoreError

__all__ = ["OperationalStore"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_IDLE = 0  # libpq's PQTRANS_IDLE: connected, outside any transaction


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the server read while a CLI job writes; the busy timeout makes a
    # second writer wait instead of failing at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _in_memory(url: str) -> bool:
    return url.startswith("sqlite") and (url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:") or ":memory:" in url)


class _AutocommitCursors:
    """psycopg cursors on connections of their own in autocommit, for writes that are one statement each.

    SQLAlchemy's pool does work on every checkout and return (bookkeeping, a
    reset, switching autocommit on and off) that costs as much client time as
    such a write's own statement; here a connection and its cursor are taken
    from and put back on a stack. At most ``limit`` connections are open: when
    all are in use a caller waits up to 30 s for one, then gets a StoreError. A
    connection that broke or was left inside a transaction is closed instead of
    being put back; after a fork the child opens its own.
    """

    def __init__(self, conninfo: str, limit: int) -> None:
        self._conninfo, self._limit = conninfo, limit
        self.timeout = 30.0  # seconds a caller waits for a connection when all are in use
        self._reset()

    def _reset(self) -> None:
        self._idle: list[Any] = []  # psycopg cursors; list.append and list.pop are atomic
        self._open, self._waiting = 0, 0
        self._freed = threading.Condition()
        self._pid = os.getpid()

    def _take(self) -> Any:
        if os.getpid() != self._pid:  # a forked child must not use (nor close) its parent's connections
            self._reset()
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self.timeout
        with self._freed:
            while True:
                try:
                    return self._idle.pop()
                except IndexError:
                    pass
                if self._open < self._limit:
                    self._open += 1
                    break
                if time.monotonic() > deadline:
                    raise StoreError(f"no database connection free after {self.timeout:g} s ({self._limit} in use)")
                self._waiting += 1
                try:  # short waits: a connection put back just before this wait began is seen at the next turn
                    self._freed.wait(0.05)
                finally:
                    self._waiting -= 1
        try:
            import psycopg

            return psycopg.connect(self._conninfo, autocommit=True).cursor()
        except BaseException:
            with self._freed:
                self._open -= 1
            raise

    def _give(self, cur: Any) -> None:
        conn = cur.connection
        if cur.closed or conn.closed or conn.broken or conn.pgconn.transaction_status != _IDLE:
            conn.close()
            with self._freed:
                self._open -= 1
                self._freed.notify()
            return
        self._idle.append(cur)
        if self._waiting:
            with self._freed:
                self._freed.notify()

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        cur = self._take()
        try:
            yield cur
        finally:
            self._give(cur)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().connection.close()
            with self._freed:
                self._open -= 1


class OperationalStore:
    """The transactional store: operators, vault, imports, audit."""

    def __init__(
        self,
        url: str,
        *,
        audit_key: Callable[[], bytes] | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
    ) -> None:
        """Open the store at ``url``.

        The process keeps ``pool_size`` connections open and opens up to ``max_overflow`` more while all are
        in use (SQLAlchemy's 5 and 10 when not given; an in-memory SQLite database has just one).
        """
        self.url = url
        self._audit_key = audit_key
        self._audit_key_value: bytes | None = None
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if not _in_memory(url):  # a queue of connections (an in-memory SQLite database has one connection)
            if pool_size is not None:
                kwargs["pool_size"] = pool_size
            if max_overflow is not None:
                kwargs["max_overflow"] = max_overflow
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine: Engine = create_engine(url, **kwargs)
        self._autocommit: _AutocommitCursors | None = None
        if self.engine.dialect.name == "postgresql":
            conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            limit = (5 if pool_size is None else pool_size) + (10 if max_overflow is None else max_overflow)
            self._autocommit = _AutocommitCursors(conninfo, max(limit, 1))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def audit_key(self) -> bytes:
        """The audit chain's HMAC key (from the runtime's master key; a store opened bare uses an empty key)."""
        if self._audit_key_value is None:
            self._audit_key_value = b"" if self._audit_key is None else self._audit_key()
        return self._audit_key_value

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (the newest by default; idempotent)."""
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def is_initialised(self) -> bool:
        return "alembic_version" in inspect(self.engine).get_table_names()

    def require_initialised(self) -> None:
        if not self.is_initialised():
            raise StoreError("the operational store is not initialised: run `patron init`")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error."""
        with self._sessions() as sess, sess.begin():
            yield sess

    def autocommit_cursor(self) -> AbstractContextManager[Any]:
        """A psycopg cursor in autocommit on a connection of its own (PostgreSQL only), for one-statement writes.

        Each statement is its own transaction. The connection is not the
        sessions' (their pool is SQLAlchemy's): at most ``pool_size +
        max_overflow`` such connections are open at once, besides those.
        """
        if self._autocommit is None:
            raise StoreError("autocommit cursors exist on PostgreSQL only")
        return self._autocommit.cursor()

    def dispose(self) -> None:
        if self._autocommit is not None:
            self._autocommit.close()
        self.engine.dispose()
