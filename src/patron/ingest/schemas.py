"""Import summaries and quarantine rows as returned to callers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ImportRead", "QuarantinePage", "QuarantineRead"]


class ImportRead(BaseModel):
    """Reconciliation of one import run."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    format: str
    source_name: str
    sha256: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_imported: int
    rows_quarantined: int
    rows_duplicate: int
    entities: dict[str, Any]
    notes: dict[str, Any]
    error: str | None = None


class QuarantineRead(BaseModel):
    """A row that was not imported and why."""

    model_config = ConfigDict(from_attributes=True)

    row_number: int
    field: str
    reason: str
    raw: str


class QuarantinePage(BaseModel):
    items: list[QuarantineRead]
    total: int
    page: int
    page_size: int
