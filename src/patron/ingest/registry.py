"""Importer classes by format name."""

from __future__ import annotations

from patron.errors import ValidationError
from patron.ingest.cdnow import CdnowImporter
from patron.ingest.contract import Importer
from patron.ingest.generic import GenericImporter
from patron.ingest.online_retail import OnlineRetailImporter
from patron.ingest.taobao import TaobaoImporter

__all__ = ["IMPORTERS", "importer_for"]

IMPORTERS: dict[str, type[Importer]] = {
    OnlineRetailImporter.format: OnlineRetailImporter,
    CdnowImporter.format: CdnowImporter,
    TaobaoImporter.format: TaobaoImporter,
    GenericImporter.format: GenericImporter,
}


def importer_for(fmt: str) -> type[Importer]:
    try:
        return IMPORTERS[fmt]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise ValidationError(f"unknown import format {fmt!r}; known: {known}", field="format") from None
