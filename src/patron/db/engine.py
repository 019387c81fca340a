"""Engine and session factory for the operational store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from patron.errors import StoreError

__all__ = ["OperationalStore"]

_MIGRATIONS = Path(__file__).parent / "migrations"


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

    def dispose(self) -> None:
        self.engine.dispose()
