"""Operational store: SQLAlchemy 2 over SQLite (embedded) or PostgreSQL."""

from patron.db.base import Base
from patron.db.engine import OperationalStore

__all__ = ["Base", "OperationalStore"]
