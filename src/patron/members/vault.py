"""Field encryption for the member vault (envelope encryption).

Each member has a random 256-bit data key, stored wrapped by a master key
(``patron.keys``). Personal fields are sealed with AES-256-GCM under the
member's data key as version byte 2, 96-bit nonce, ciphertext and tag; the
member key and field name are bound as associated data, so a ciphertext copied
onto another member or field fails to open. Entries of older data directories
(``key_version`` 1) were sealed in format 1 under the installation's secrets
key; they keep opening until a rotation re-seals them.

``seal``/``open`` (format 1, secrets system key) protect operators' TOTP
secrets and alert webhook secrets. Look-ups by e-mail or phone use keyed blind
indexes (HMAC-SHA256 under the blind-index system key), never plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patron.errors import PatronError
from patron.keys.service import KeyService

__all__ = [
    "ENVELOPE",
    "LEGACY",
    "PERSONAL_FIELDS",
    "FieldCipher",
    "VaultDecryptError",
    "normalize_email",
    "normalize_phone",
]

PERSONAL_FIELDS = ("name", "email", "phone", "address", "birthday")
LEGACY = 1  # member_vault.key_version: sealed under the secrets key
ENVELOPE = 2  # member_vault.key_version: sealed under the member's data key
_SECRET_FORMAT = b"\x01"
_FIELD_FORMAT = b"\x02"


class VaultDecryptError(PatronError):
    """A vault ciphertext could not be opened (wrong key or tampered)."""


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit() or ch == "+")


def _aad(owner: str, field: str) -> bytes:
    return f"{owner}:{field}".encode()


def _open(aead: AESGCM, version: bytes, owner: str, field: str, sealed: bytes) -> str:
    if not sealed or sealed[:1] != version:
        raise VaultDecryptError("unknown vault ciphertext version")
    try:
        return aead.decrypt(sealed[1:13], sealed[13:], _aad(owner, field)).decode()
    except InvalidTag as exc:
        raise VaultDecryptError("vault ciphertext does not open under this key") from exc


class FieldCipher:
    """Seals and opens personal fields and secrets; computes blind indexes."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys  # system keys are asked for on each use, so a restore's new keys apply at once

    def _secrets_aead(self) -> AESGCM:
        return AESGCM(self.keys.system_key("secrets"))

    def seal(self, owner: str, field: str, plaintext: str) -> bytes:
        """Seal a secret (TOTP, webhook) for ``owner`` under the secrets key."""
        nonce = os.urandom(12)
        return _SECRET_FORMAT + nonce + self._secrets_aead().encrypt(nonce, plaintext.encode(), _aad(owner, field))

    def open(self, owner: str, field: str, sealed: bytes) -> str:
        """Open what ``seal`` sealed (and vault entries of the older scheme)."""
        return _open(self._secrets_aead(), _SECRET_FORMAT, owner, field, sealed)

    def blind_index(self, kind: str, value: str) -> str:
        """The keyed index of an e-mail address or phone number (normalized first)."""
        normal = normalize_email(value) if kind == "email" else normalize_phone(value)
        key = self.keys.system_key("blind-index")
        return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def seal_field(data_key: AESGCM, member_key: str, field: str, plaintext: str) -> bytes:
        """Seal one personal field under the member's data key."""
        nonce = os.urandom(12)
        return _FIELD_FORMAT + nonce + data_key.encrypt(nonce, plaintext.encode(), _aad(member_key, field))

    @staticmethod
    def open_field(data_key: AESGCM, member_key: str, field: str, sealed: bytes) -> str:
        """Open one personal field sealed by ``seal_field``."""
        return _open(data_key, _FIELD_FORMAT, member_key, field, sealed)
