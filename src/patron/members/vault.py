"""Field encryption for the member vault.

Each personal field is sealed with AES-256-GCM under a key derived (HKDF-SHA256)
from the master key; the member key and field name are bound as associated
data, so a ciphertext copied onto another member or field fails to open.
Look-ups by e-mail or phone use keyed blind indexes (HMAC-SHA256 under a second
derived key), never plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from patron.errors import PatronError

__all__ = ["PERSONAL_FIELDS", "FieldCipher", "VaultDecryptError", "normalize_email", "normalize_phone"]

PERSONAL_FIELDS = ("name", "email", "phone", "address", "birthday")
_VERSION = b"\x01"


class VaultDecryptError(PatronError):
    """A vault ciphertext could not be opened (wrong key or tampered)."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit() or ch == "+")


@dataclass(frozen=True)
class FieldCipher:
    """Seals and opens personal fields; computes blind indexes."""

    master_key: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", AESGCM(_derive(self.master_key, b"patron-vault-v1")))
        object.__setattr__(self, "_index_key", _derive(self.master_key, b"patron-blind-index-v1"))

    def seal(self, member_key: str, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        aad = f"{member_key}:{field}".encode()
        aead: AESGCM = self._aead  # type: ignore[attr-defined]
        return _VERSION + nonce + aead.encrypt(nonce, plaintext.encode(), aad)

    def open(self, member_key: str, field: str, sealed: bytes) -> str:
        if not sealed or sealed[:1] != _VERSION:
            raise VaultDecryptError("unknown vault ciphertext version")
        aad = f"{member_key}:{field}".encode()
        aead: AESGCM = self._aead  # type: ignore[attr-defined]
        try:
            return aead.decrypt(sealed[1:13], sealed[13:], aad).decode()
        except InvalidTag as exc:
            raise VaultDecryptError("vault ciphertext does not open under this key") from exc

    def blind_index(self, kind: str, value: str) -> str:
        normal = normalize_email(value) if kind == "email" else normalize_phone(value)
        key: bytes = self._index_key  # type: ignore[attr-defined]
        return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()
