"""Exception hierarchy.

::

    PatronError
    ├── SettingsError            settings are missing or unsafe
    ├── StoreError               a store is unreachable, locked or not initialised
    │   └── WarehouseBusyError   another process holds the embedded warehouse
    ├── ValidationError          input rejected; carries the field path
    ├── NotFoundError            the thing asked for does not exist
    ├── ConflictError            the write conflicts with existing state
    ├── AuthenticationError      who is calling is unknown
    │   └── MfaRequiredError     the password was right; a one-time code is needed too
    ├── RateLimitedError         too many attempts: retry after a while
    ├── AuthorizationError       the caller may not do this
    └── ImportFormatError        a source file cannot be read at all
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "ConflictError",
    "ImportFormatError",
    "MfaRequiredError",
    "NotFoundError",
    "PatronError",
    "RateLimitedError",
    "SettingsError",
    "StoreError",
    "ValidationError",
    "WarehouseBusyError",
]


class PatronError(Exception):
    """Root of every error Patron raises on purpose."""


class SettingsError(PatronError):
    """Settings are missing, malformed or unsafe for the environment."""


class StoreError(PatronError):
    """A store is unreachable, locked or not initialised."""


class WarehouseBusyError(StoreError):
    """Another process is writing the embedded warehouse."""


class ValidationError(PatronError):
    """Input was rejected.

    ``field`` is a dotted path to the offending field (``"query.page"``).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(PatronError):
    """The requested object does not exist."""


class ConflictError(PatronError):
    """The write conflicts with the current state."""


class AuthenticationError(PatronError):
    """The caller could not be identified."""


class MfaRequiredError(AuthenticationError):
    """The password was right but the operator's second factor (a TOTP code) is missing or wrong."""


class RateLimitedError(PatronError):
    """Too many attempts; ``retry_after`` is the number of seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class AuthorizationError(PatronError):
    """The caller is known but not allowed to do this."""


class ImportFormatError(PatronError):
    """A source file cannot be read at all (missing columns, wrong format)."""
