"""Migration 0002 creates exactly the tables the models declare, and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Table, inspect, text

from patron.db.base import Base
from patron.db.engine import OperationalStore
from patron.runtime import Runtime

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "patron" / "db" / "migrations"
TABLES = {"alert_rules", "alerts"}


def _config(connection: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _table_of(diff: Any) -> str:
    """The table an autogenerate difference is about (other domains' tables are not this test's business)."""
    first = diff[0] if isinstance(diff, list) else diff  # column modifications come grouped in a list
    subject = first[1]
    if isinstance(subject, Table):
        return str(subject.name)
    if hasattr(subject, "table"):  # an index or a constraint
        return str(subject.table.name)
    return str(first[2])  # (operation, schema, table, ...)


def test_the_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert [d for d in differences if _table_of(d) in TABLES] == []
    found = inspect(runtime.store.engine)
    assert set(found.get_table_names()) >= TABLES
    assert {c["name"] for c in found.get_unique_constraints("alerts")} >= {"uq_alerts_rule_id"}


def test_downgrade_to_0001_and_upgrade_again_on_sqlite(tmp_path: Path) -> None:
    store = OperationalStore(f"sqlite:///{tmp_path / 'migrate.db'}")
    try:
        store.migrate()
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO alert_rules (name, metric, kind, op, value, skip_festivals, enabled,"
                    " webhook_secret, created_by, created_at, updated_at)"
                    " VALUES ('r', 'gmv', 'threshold', '<', 1, 0, 1, x'00', 't', '2024-01-01', '2024-01-01')"
                )
            )
        with store.engine.begin() as conn:
            command.downgrade(_config(conn), "0001")
        after_down = set(inspect(store.engine).get_table_names())
        with store.engine.begin() as conn:
            command.upgrade(_config(conn), "head")
        after_up = set(inspect(store.engine).get_table_names())
    finally:
        store.dispose()

    assert not TABLES & after_down and "operators" in after_down
    assert after_up >= TABLES
