"""Master keys and the keyring: identifying keys, wrapping and unwrapping other keys.

A master key never encrypts data itself. It yields a key-encryption key
(HKDF-SHA256) that wraps random 256-bit keys with AES-256-GCM; the owner of the
wrapped key (``member:<key>`` or ``system:<purpose>``) is bound as associated
data, so a wrapped key copied onto another owner does not unwrap. A master key
is known by its id, a 16-hex-digit HMAC fingerprint (the same value backups
have always recorded), which tells nothing about the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from patron.keys.errors import KeyUnwrapError, MissingMasterKeyError
from patron.settings import Settings

__all__ = ["MasterKey", "MasterKeyring", "key_id"]

_WRAP_VERSION = b"\x01"
_WRAP_LABEL = b"patron/wrap/v1:"


def key_id(secret: bytes) -> str:
    """The public id of a master key: a fingerprint that reveals nothing about it."""
    return hmac.new(secret, b"patron/backup-fingerprint/v1", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKey:
    """One master key and its key-encryption key."""

    secret: bytes = field(repr=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", key_id(self.secret))
        kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"patron/key-encryption-key/v1")
        object.__setattr__(self, "_kek", AESGCM(kek.derive(self.secret)))

    def wrap(self, owner: str, key: bytes) -> bytes:
        """Seal ``key`` for ``owner``: version byte, 96-bit nonce, ciphertext and tag."""
        nonce = os.urandom(12)
        kek: AESGCM = self._kek  # type: ignore[attr-defined]
        return _WRAP_VERSION + nonce + kek.encrypt(nonce, key, _WRAP_LABEL + owner.encode())

    def unwrap(self, owner: str, wrapped: bytes) -> bytes:
        """The key sealed for ``owner``; KeyUnwrapError if it does not open."""
        if wrapped[:1] != _WRAP_VERSION:
            raise KeyUnwrapError(f"the wrapped key of {owner} has an unknown format")
        kek: AESGCM = self._kek  # type: ignore[attr-defined]
        try:
            return kek.decrypt(wrapped[1:13], wrapped[13:], _WRAP_LABEL + owner.encode())
        except InvalidTag as exc:
            raise KeyUnwrapError(f"the wrapped key of {owner} does not open under master key {self.id}") from exc


class MasterKeyring:
    """The master keys this process holds, newest (active) first.

    With a key file the keyring follows the file: a change (a rotation by
    another process) is picked up on the next use, and a key id that is not
    known yet makes it read the file again before giving up.
    """

    def __init__(self, load: Callable[[], Sequence[bytes]], *, watch: Path | None = None) -> None:
        self._load = load
        self._watch = watch
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: tuple[MasterKey, ...] = ()
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterKeyring:
        """The keyring of PATRON_MASTER_KEY, or of the key file (followed as it changes)."""
        return cls(settings.master_keys, watch=settings.key_file if settings.keyring_in_file else None)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._watch is None:
            return None
        try:
            info = self._watch.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def reload(self) -> None:
        """Read the keys again from their source."""
        with self._lock:
            stamp = self._file_stamp()
            self._keys = tuple(MasterKey(secret) for secret in self._load())
            self._stamp = stamp

    def _current(self) -> tuple[MasterKey, ...]:
        if self._watch is not None and self._file_stamp() != self._stamp:
            self.reload()
        return self._keys

    def held(self) -> tuple[MasterKey, ...]:
        """Every key, newest first."""
        return self._current()

    def active(self) -> MasterKey:
        """The key new wraps are made under."""
        return self._current()[0]

    def has(self, key_id: str) -> bool:
        return any(key.id == key_id for key in self._current())

    def get(self, key_id: str) -> MasterKey:
        """The key with this id (reading the source again once if it is unknown)."""
        for attempt in range(2):
            for key in self._current():
                if key.id == key_id:
                    return key
            if attempt == 0:
                self.reload()
        raise MissingMasterKeyError(
            f"master key {key_id} is not in the keyring: add it (after the active key) to "
            "PATRON_MASTER_KEY or the key file",
            [key_id],
        )
