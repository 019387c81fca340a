"""Importer classes by format name."""

from __future__ import annotations

from patron.errors import ValidationError
from patron.ingest.contract import Importer
from patron.ingest.online_retail import OnlineRetailImporter

__all__ = ["IMPORTERS", "importer_for"]

IMPORTERS: dict[str, type[Importer]] = {
    OnlineRetailImporter.format: OnlineRetailImporter,
}


def importer_for(fmt: str) -> type[Importer]:
    try:
        return IMPORTERS[fmt]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise ValidationError(f"unknown import format {fmt!r}; known: {known}", field="format") from None
