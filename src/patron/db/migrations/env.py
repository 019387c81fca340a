"""Alembic environment: runs on the connection handed over by OperationalStore."""

from __future__ import annotations

from alembic import context

import patron.db.models  # noqa: F401  (registers every table)
from patron.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` run by hand
    raise RuntimeError("run migrations through `patron init`")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
