"""Settings: one validated object, environment prefix ``PATRON_``."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from patron.errors import SettingsError

__all__ = ["PLACEHOLDER_MASTER_KEY", "Settings", "get_settings", "parse_keyring"]

# Documented placeholder; accepted only when PATRON_ENV=development.
PLACEHOLDER_MASTER_KEY = "development-only-placeholder-key-change-me"

_KEY_FILE = "master.key"
_KEY_FILE_HEADER = "# Patron master keys, newest (active) first. Remove a key only with `patron keys retire`.\n"


def _decode_key(entry: str, position: int, count: int) -> bytes:
    where = "the master key" if count == 1 else f"master key {position} of {count}"
    if entry == PLACEHOLDER_MASTER_KEY:
        return entry.encode()[:32].ljust(32, b"0")
    try:
        key = base64.urlsafe_b64decode(entry.encode())
    except ValueError as exc:
        raise SettingsError(f"{where} is not valid base64") from exc
    if len(key) != 32:
        raise SettingsError(f"{where} must decode to 32 bytes")
    return key


def parse_keyring(raw: str) -> tuple[bytes, ...]:
    """Master keys from text: base64 keys separated by commas or lines, newest (active) first.

    Lines starting with ``#`` are comments. A single key is a keyring of one.
    """
    lines = [line for line in raw.splitlines() if not line.lstrip().startswith("#")]
    entries = [part.strip() for line in lines for part in line.split(",") if part.strip()]
    if not entries:
        raise SettingsError("the master keyring is empty")
    keys = tuple(_decode_key(entry, i, len(entries)) for i, entry in enumerate(entries, start=1))
    if len(set(keys)) != len(keys):
        raise SettingsError("the master keyring lists the same key twice")
    return keys


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
    # The operational store's connections per process: kept open, and opened on top while all are in use.
    # Together they cover the web server's 40 worker threads, so a burst of requests never waits for one.
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=30, ge=0, le=1000)
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    secure_cookies: bool = False
    # Admins must enrol a TOTP second factor before their session may do anything else.
    # Unset: required in production, not in development.
    require_admin_mfa: bool | None = None
    # Web hardening (docs/web-security.md). Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed:
    # addresses or networks, comma-separated in the environment. Nobody is trusted by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    hsts_seconds: int = Field(default=31_536_000, ge=0)  # sent only on requests that came over TLS; 0 = never
    max_request_bytes: int = Field(default=1 << 20, ge=1024)  # request bodies, except import uploads
    max_upload_bytes: int = Field(default=256 << 20, ge=1024)  # request bodies under /api/v1/imports
    # Token buckets in each worker process's memory: sign-ins per client address, requests per API key.
    rate_limit_login_per_minute: int = Field(default=10, ge=1)
    rate_limit_api_key_per_second: float = Field(default=2000.0, gt=0)
    rate_limit_api_key_burst: int = Field(default=2000, ge=1)
    # How long a worker trusts an API key it verified: the longest another process may still accept a revoked key.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Imports read only regular files inside this directory when set (relative paths are taken inside it).
    import_dir: Path | None = None
    import_max_bytes: int = Field(default=4 << 30, ge=1024)  # a file's size after decompression
    # Retention (docs/retention.md): days kept per data category where they differ from the defaults, as JSON
    # ('{"behaviour_events": 365}'); when the purge runs: "daily at HH:MM" (UTC) or "off".
    retention_days: dict[str, int] = Field(default_factory=dict)
    retention_schedule: str = Field(default="daily at 02:30", pattern=r"^(off|daily at ([01]\d|2[0-3]):[0-5]\d)$")

    @field_validator("retention_days")
    @classmethod
    def _positive_periods(cls, value: dict[str, int]) -> dict[str, int]:
        for category, days in value.items():
            if not 1 <= days <= 36_500:
                raise ValueError(f"PATRON_RETENTION_DAYS: {category} must be kept 1 to 36500 days, not {days}")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"PATRON_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _refuse_placeholder(self) -> Settings:
        entries = [part.strip() for part in (self.master_key or "").split(",")]
        if PLACEHOLDER_MASTER_KEY in entries and self.env != "development":
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

    @property
    def keyring_in_file(self) -> bool:
        """True when the keyring lives in the key file (PATRON_MASTER_KEY unset)."""
        return self.master_key is None

    def master_keys(self) -> tuple[bytes, ...]:
        """The master keyring, newest (active) first: PATRON_MASTER_KEY or the key file, read afresh."""
        raw = self.master_key
        if raw is None:
            if not self.key_file.exists():
                raise SettingsError(
                    f"no master key: set PATRON_MASTER_KEY or run `patron init` "
                    f"to create {_KEY_FILE} in the data directory"
                )
            raw = self.key_file.read_text()
        return parse_keyring(raw)

    @cached_property
    def master_key_bytes(self) -> bytes:
        """The active (newest) 32-byte master key when first asked."""
        return self.master_keys()[0]

    def write_key_file(self, keys: Sequence[bytes]) -> None:
        """Replace the key file with ``keys`` (newest first), atomically and readable by the owner only."""
        if not keys:
            raise SettingsError("the master keyring cannot be empty")
        self.home.mkdir(parents=True, exist_ok=True)
        partial = self.key_file.with_name(_KEY_FILE + ".partial")
        body = _KEY_FILE_HEADER + "".join(base64.urlsafe_b64encode(key).decode() + "\n" for key in keys)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.key_file)

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
