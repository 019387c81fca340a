"""CSRF protection for console forms: signed double-submit tokens.

The browser holds a random nonce in the ``patron_csrf`` cookie; each form
carries ``HMAC(key, nonce)``, the key being derived from the master key. A
POST is accepted only when the form token matches the cookie's nonce, so a
site that can neither read our pages nor forge the HMAC cannot submit forms.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from patron.settings import Settings

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "new_nonce", "token_for", "valid_nonce", "verify"]

CSRF_COOKIE = "patron_csrf"
CSRF_FIELD = "csrf_token"
_LABEL = b"patron-console-csrf-v1"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.master_key_bytes, _LABEL, hashlib.sha256).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def valid_nonce(nonce: str | None) -> bool:
    return nonce is not None and _NONCE.match(nonce) is not None


def token_for(settings: Settings, nonce: str) -> str:
    """Return the form token that goes with ``nonce``."""
    return hmac.new(_key(settings), nonce.encode(), hashlib.sha256).hexdigest()


def verify(settings: Settings, nonce: str | None, token: str | None) -> bool:
    """Whether ``token`` was issued for the cookie's ``nonce``."""
    if not token or nonce is None or not valid_nonce(nonce):
        return False
    return hmac.compare_digest(token_for(settings, nonce), token)
