"""The importer contract: every source format turns a file into a ParsedBatch.

Row accounting: each source row ends in exactly one of *imported*,
*duplicate* (its natural key is already in the warehouse) or *quarantined*
(with row number, field and reason). ``primary`` names the entity whose
rows stand one-to-one for the accepted source rows; the service counts
imported and duplicate rows on it, so ``rows_read == imported + duplicate +
quarantined`` always holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl

from patron.progress import NullProgress, Progress

__all__ = ["QUARANTINE_SCHEMA", "Entity", "Importer", "ParsedBatch"]

Entity = Literal["members", "products", "orders", "order_lines", "events", "inventory"]

QUARANTINE_SCHEMA = {"row_number": pl.Int64, "field": pl.String, "reason": pl.String, "raw": pl.String}


@dataclass
class ParsedBatch:
    """What an importer read from one file, ready for the service to persist.

    Frames reference members by ``member_source_id`` (the source's own id);
    the service swaps it for the opaque member key. ``members`` carries
    ``source_id`` plus demographics and, optionally, the personal fields
    (name, email, phone, address, birthday) that go only to the vault.
    """

    source: str
    rows_read: int
    primary: Entity
    quarantine: pl.DataFrame
    members: pl.DataFrame | None = None
    products: pl.DataFrame | None = None
    orders: pl.DataFrame | None = None
    order_lines: pl.DataFrame | None = None
    events: pl.DataFrame | None = None
    inventory: pl.DataFrame | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def frame(self, entity: Entity) -> pl.DataFrame | None:
        frame: pl.DataFrame | None = getattr(self, entity)
        return frame


class Importer(ABC):
    """One source format. Subclasses set ``format`` and implement ``parse``."""

    format: ClassVar[str]
    summary: ClassVar[str]
    needs_mapping: ClassVar[bool] = False

    def __init__(self, path: Path, mapping: dict[str, Any] | None = None) -> None:
        self.path = path
        self.mapping = mapping

    @abstractmethod
    def parse(self, progress: Progress = NullProgress()) -> ParsedBatch:  # noqa: B008
        """Read and validate the file; never raises for a bad row, only for a bad file."""
