"""Errors of the keys domain."""

from __future__ import annotations

from patron.errors import PatronError

__all__ = ["KeyUnwrapError", "MissingMasterKeyError"]


class MissingMasterKeyError(PatronError):
    """Something is wrapped under a master key that is not in the keyring."""

    def __init__(self, message: str, key_ids: list[str]) -> None:
        super().__init__(message)
        self.key_ids = key_ids


class KeyUnwrapError(PatronError):
    """A wrapped key does not open: wrong master key, wrong owner or tampered."""
