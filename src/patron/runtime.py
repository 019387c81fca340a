"""The runtime: settings plus the handles every service needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from patron.audit.chain import chain_key
from patron.db.engine import OperationalStore
from patron.members.vault import FieldCipher
from patron.settings import Settings, get_settings
from patron.warehouse.store import Warehouse

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """Settings and store handles; cheap to create, close when done."""

    settings: Settings = field(default_factory=get_settings)

    @cached_property
    def store(self) -> OperationalStore:
        settings = self.settings
        return OperationalStore(settings.operational_url, audit_key=lambda: chain_key(settings.master_key_bytes))

    @cached_property
    def cipher(self) -> FieldCipher:
        return FieldCipher(self.settings.master_key_bytes)

    def warehouse(self, *, read_only: bool = False) -> Warehouse:
        """Open the warehouse; writers hold its lock until closed."""
        return Warehouse(self.settings.warehouse_location, read_only=read_only)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
