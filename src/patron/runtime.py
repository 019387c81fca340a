"""The runtime: settings plus the handles every service needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import event

from patron.db.engine import OperationalStore
from patron.errors import PatronError
from patron.keys.master import MasterKeyring
from patron.keys.service import KeyService
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
        store = OperationalStore(
            self.settings.operational_url,
            audit_key=lambda: self.keys.system_key("audit-chain"),
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
        )
        if store.dialect == "sqlite":
            # One writer: the system keys are made (on a connection of their own) before any transaction of
            # this process can hold the write lock they would otherwise wait for.
            event.listen(store.engine, "begin", self._prepare_keys)
        return store

    def _prepare_keys(self, _conn: object) -> None:
        try:
            keys = self.keys
        except PatronError:
            return  # no master key configured: reported where a key is needed
        keys.prepare()

    @cached_property
    def keyring(self) -> MasterKeyring:
        """The master keys (PATRON_MASTER_KEY or the key file, followed as it changes)."""
        return MasterKeyring.from_settings(self.settings)

    @cached_property
    def keys(self) -> KeyService:
        """System keys and member data keys, wrapped by the keyring's master keys."""
        return KeyService(self.store, self.keyring)

    @cached_property
    def cipher(self) -> FieldCipher:
        return FieldCipher(self.keys)

    def warehouse(self, *, read_only: bool = False) -> Warehouse:
        """Open the warehouse; writers hold its lock until closed."""
        return Warehouse(self.settings.warehouse_location, read_only=read_only)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
