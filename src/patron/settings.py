"""Settings: one validated object, environment prefix ``PATRON_``."""

from __future__ import annotations

import base64
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from patron.errors import SettingsError

__all__ = ["PLACEHOLDER_MASTER_KEY", "Settings", "get_settings"]

# Documented placeholder; accepted only when PATRON_ENV=development.
PLACEHOLDER_MASTER_KEY = "development-only-placeholder-key-change-me"

_KEY_FILE = "master.key"


def _default_home() -> Path:
    return Path(os.path.expanduser("~")) / ".patron"


class Settings(BaseSettings):
    """Everything Patron reads from its environment.

    The data directory defaults to ``~/.patron``; both stores live there unless
    their URLs say otherwise.
    """

    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    env: Literal["development", "production"] = "production"
    database_url: str | None = None
    warehouse_url: str | None = None
    master_key: str | None = None
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    secure_cookies: bool = False
    # Admins must enrol a TOTP second factor before their session may do anything else.
    # Unset: required in production, not in development.
    require_admin_mfa: bool | None = None

    @model_validator(mode="after")
    def _refuse_placeholder(self) -> Settings:
        if self.master_key == PLACEHOLDER_MASTER_KEY and self.env != "development":
            raise ValueError(
                "PATRON_MASTER_KEY is the documented placeholder; it is accepted only "
                "with PATRON_ENV=development. Set a random key (patron init makes one)."
            )
        return self

    @property
    def admin_mfa_required(self) -> bool:
        return self.env == "production" if self.require_admin_mfa is None else self.require_admin_mfa

    @property
    def operational_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'patron.db'}"

    @property
    def warehouse_location(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.home / 'warehouse.duckdb'}"

    @property
    def artefact_dir(self) -> Path:
        return self.home / "artefacts"

    @property
    def key_file(self) -> Path:
        return self.home / _KEY_FILE

    @cached_property
    def master_key_bytes(self) -> bytes:
        """The 32-byte master key: from PATRON_MASTER_KEY or the key file."""
        raw = self.master_key
        if raw is None:
            if not self.key_file.exists():
                raise SettingsError(
                    f"no master key: set PATRON_MASTER_KEY or run `patron init` "
                    f"to create {_KEY_FILE} in the data directory"
                )
            raw = self.key_file.read_text().strip()
        if raw == PLACEHOLDER_MASTER_KEY:
            return raw.encode()[:32].ljust(32, b"0")
        try:
            key = base64.urlsafe_b64decode(raw.encode())
        except ValueError as exc:
            raise SettingsError("master key is not valid base64") from exc
        if len(key) != 32:
            raise SettingsError("master key must decode to 32 bytes")
        return key

    def ensure_key_file(self) -> bool:
        """Create a random key file if no key is configured; True if created."""
        if self.master_key is not None or self.key_file.exists():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return True


def get_settings() -> Settings:
    """Read and validate settings, turning pydantic errors into SettingsError."""
    try:
        return Settings()
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
