"""The migrations build exactly the schema the models declare, on SQLite and (in CI) on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import patron.db.models  # noqa: F401  (registers every table)
from patron.db.base import Base
from patron.runtime import Runtime


def test_every_model_table_is_migrated_exactly(runtime: Runtime) -> None:
    with runtime.store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []
