"""Operators, password sessions and API keys."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from patron.auth.models import ApiKey, Operator, OperatorSession
from patron.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, MfaSetup, OperatorCreate, OperatorRead
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import (
    AuthenticationError,
    ConflictError,
    MfaRequiredError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from patron.members.vault import FieldCipher
from patron.settings import Settings

__all__ = [
    "Principal",
    "authenticate",
    "begin_mfa",
    "cached_api_key",
    "confirm_mfa",
    "create_api_key",
    "create_operator",
    "list_api_keys",
    "list_operators",
    "open_session",
    "reset_mfa",
    "resolve_api_key",
    "resolve_session",
    "revoke_all_sessions",
    "revoke_api_key",
    "revoke_session",
    "totp_step",
]

LOCK_AFTER = 5  # failed sign-ins in a row before the account locks
LOCK_BASE = timedelta(seconds=30)
LOCK_MAX = timedelta(hours=1)
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
_DUMMY_HASH = _hasher.hash("patron-timing-equaliser")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator (via session) or an API key."""

    kind: str
    id: int
    name: str
    role: str
    scopes: frozenset[str] | None = None
    # An admin who must enrol a second factor before doing anything else.
    mfa_pending: bool = False

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def create_operator(store: OperationalStore, data: OperatorCreate) -> OperatorRead:
    with store.session() as sess:
        if sess.scalar(select(Operator.id).where(Operator.username == data.username)) is not None:
            raise ConflictError(f"operator {data.username!r} exists already")
        operator = Operator(username=data.username, password_hash=_hasher.hash(data.password), role=data.role)
        sess.add(operator)
        try:
            sess.flush()
        except IntegrityError as exc:
            raise ConflictError(f"operator {data.username!r} exists already") from exc
        return OperatorRead.model_validate(operator)


def list_operators(store: OperationalStore) -> list[OperatorRead]:
    with store.session() as sess:
        return [OperatorRead.model_validate(op) for op in sess.scalars(select(Operator).order_by(Operator.id))]


def _backoff(failures: int) -> timedelta:
    """Lock length after ``failures`` failed sign-ins in a row (none before the fifth)."""
    if failures < LOCK_AFTER:
        return timedelta(0)
    lock: timedelta = LOCK_BASE * (2 ** (failures - LOCK_AFTER))
    return min(lock, LOCK_MAX)


def _mfa_pending(operator: Operator, settings: Settings | None) -> bool:
    required = settings is not None and settings.admin_mfa_required
    return required and operator.role == "admin" and not operator.mfa_enabled


def authenticate(
    store: OperationalStore,
    username: str,
    password: str,
    otp: str | None = None,
    *,
    cipher: FieldCipher | None = None,
    settings: Settings | None = None,
) -> Principal:
    """Check a password (and the TOTP code of an enrolled operator).

    The same hashing work is done whether or not the user exists. Each failure
    (wrong password or code) counts; from the fifth in a row the account is
    locked for 30 s, doubling with each further failure up to an hour, and a
    locked account is refused without checking anything (RateLimitedError).
    """
    now = utcnow()
    failure: str | None = None
    wait = 0
    principal: Principal | None = None
    with store.session() as sess:
        operator = sess.scalar(select(Operator).where(Operator.username == username).with_for_update())
        if operator is not None and operator.locked_until is not None and _aware(operator.locked_until) > now:
            wait = math.ceil((_aware(operator.locked_until) - now).total_seconds())
        else:
            stored = operator.password_hash if operator else _DUMMY_HASH
            try:
                _hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                failure = "password"
            if failure is None and (operator is None or not operator.is_active):
                failure = "password"
            if failure is None and operator is not None and operator.mfa_enabled:
                step = None if cipher is None else totp_step(cipher, operator, otp, now)
                if step is None:
                    failure = "otp"
                else:
                    operator.mfa_last_step = step
            if operator is not None and failure is not None:
                operator.failed_logins += 1
                lock = _backoff(operator.failed_logins)
                if lock:
                    operator.locked_until = now + lock
            elif operator is not None:
                operator.failed_logins, operator.locked_until = 0, None
                if _hasher.check_needs_rehash(operator.password_hash):
                    operator.password_hash = _hasher.hash(password)
                principal = Principal(
                    "operator", operator.id, operator.username, operator.role, None, _mfa_pending(operator, settings)
                )
    if wait:
        raise RateLimitedError(f"too many failed sign-ins: try again in {wait} s", wait)
    if failure == "otp":
        raise MfaRequiredError("a valid one-time code from the authenticator app is required")
    if principal is None:
        raise AuthenticationError("wrong username or password")
    return principal


def totp_step(cipher: FieldCipher, operator: Operator, code: str | None, now: datetime) -> int | None:
    """The time step ``code`` is valid for (this one or either neighbour), or None; a used step is refused."""
    if not code or operator.mfa_secret is None:
        return None
    totp = pyotp.TOTP(cipher.open(_mfa_owner(operator.id), "totp", operator.mfa_secret))
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=30 * offset)
        if hmac.compare_digest(totp.at(moment), code):
            step = int(totp.timecode(moment))
            if operator.mfa_last_step is not None and step <= operator.mfa_last_step:
                return None  # a code is accepted once
            return step
    return None


def _mfa_owner(operator_id: int) -> str:
    return f"operator-{operator_id}"


def begin_mfa(store: OperationalStore, cipher: FieldCipher, operator_id: int) -> MfaSetup:
    """Give the operator a new TOTP secret (pending until confirmed with a code from the app)."""
    secret = pyotp.random_base32()
    with store.session() as sess:
        operator = sess.get(Operator, operator_id)
        if operator is None:
            raise NotFoundError(f"operator {operator_id} does not exist")
        if operator.mfa_enabled:
            raise ConflictError("a second factor is enrolled already; an admin can reset it")
        operator.mfa_secret = cipher.seal(_mfa_owner(operator.id), "totp", secret)
        operator.mfa_last_step = None
        uri = pyotp.TOTP(secret).provisioning_uri(name=operator.username, issuer_name="Patron")
    return MfaSetup(secret=secret, otpauth_uri=uri)


def confirm_mfa(store: OperationalStore, cipher: FieldCipher, operator_id: int, code: str) -> None:
    """Turn the pending second factor on once the operator proves the app shows the right code."""
    with store.session() as sess:
        operator = sess.get(Operator, operator_id)
        if operator is None:
            raise NotFoundError(f"operator {operator_id} does not exist")
        if operator.mfa_enabled:
            raise ConflictError("a second factor is enrolled already")
        if operator.mfa_secret is None:
            raise ValidationError("no second factor is being enrolled: start with POST /api/v1/auth/mfa/setup", "code")
        step = totp_step(cipher, operator, code, utcnow())
        if step is None:
            raise ValidationError("the code does not match; check the authenticator app's clock", "code")
        operator.mfa_enabled, operator.mfa_last_step = True, step


def reset_mfa(store: OperationalStore, operator_id: int) -> int:
    """Remove an operator's second factor and end their sessions; returns the sessions ended."""
    with store.session() as sess:
        operator = sess.get(Operator, operator_id)
        if operator is None:
            raise NotFoundError(f"operator {operator_id} does not exist")
        operator.mfa_secret, operator.mfa_enabled, operator.mfa_last_step = None, False, None
    return revoke_all_sessions(store, operator_id)


def revoke_all_sessions(store: OperationalStore, operator_id: int) -> int:
    """End every open session of an operator (on every device); returns how many."""
    with store.session() as sess:
        if sess.get(Operator, operator_id) is None:
            raise NotFoundError(f"operator {operator_id} does not exist")
        result = sess.execute(
            update(OperatorSession)
            .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked.is_(False))
            .values(revoked=True)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def open_session(store: OperationalStore, principal: Principal) -> str:
    """Start a session; the token is returned once and stored only hashed."""
    token = secrets.token_urlsafe(32)
    with store.session() as sess:
        sess.add(OperatorSession(token_hash=_digest(token), operator_id=principal.id))
    return token


def resolve_session(store: OperationalStore, settings: Settings, token: str) -> Principal:
    """The operator behind a session token, enforcing idle and absolute timeouts."""
    now = utcnow()
    with store.session() as sess:
        found = sess.execute(
            select(OperatorSession, Operator)
            .join(Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == _digest(token))
        ).first()
        if found is None:
            raise AuthenticationError("not signed in")
        session, operator = found
        idle = now - _aware(session.last_seen_at) > timedelta(minutes=settings.session_idle_minutes)
        old = now - _aware(session.created_at) > timedelta(hours=settings.session_absolute_hours)
        if session.revoked or idle or old or not operator.is_active:
            raise AuthenticationError("the session has ended; sign in again")
        session.last_seen_at = now
        return Principal(
            "operator", operator.id, operator.username, operator.role, None, _mfa_pending(operator, settings)
        )


def revoke_session(store: OperationalStore, token: str) -> None:
    with store.session() as sess:
        sess.execute(update(OperatorSession).where(OperatorSession.token_hash == _digest(token)).values(revoked=True))


def create_api_key(store: OperationalStore, data: ApiKeyCreate, created_by: int | None) -> ApiKeyCreated:
    """Create a key ``pk_<prefix>_<secret>``; only its SHA-256 is stored."""
    prefix = secrets.token_hex(4)
    key = f"pk_{prefix}_{secrets.token_urlsafe(32)}"
    with store.session() as sess:
        row = ApiKey(
            name=data.name,
            prefix=prefix,
            key_hash=_digest(key),
            role=data.role,
            scopes=list(data.scopes),
            created_by=created_by,
            expires_at=data.expires_at,
        )
        sess.add(row)
        sess.flush()
        return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), key=key)


def list_api_keys(store: OperationalStore) -> list[ApiKeyRead]:
    with store.session() as sess:
        return [ApiKeyRead.model_validate(k) for k in sess.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_api_key(store: OperationalStore, key_id: int) -> ApiKeyRead:
    with store.session() as sess:
        row = sess.get(ApiKey, key_id)
        if row is None:
            raise NotFoundError(f"API key {key_id} does not exist")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        revoked = ApiKeyRead.model_validate(row)
    _verified_keys(store).forget(key_id)  # after the commit: a request now verifies against the store again
    return revoked


@dataclass(frozen=True)
class _VerifiedKey:
    principal: Principal
    expires_at: datetime | None
    trusted_until: float  # time.monotonic() after which the store is asked again


class _VerifiedKeys:
    """API keys of one store verified recently in this process, by the SHA-256 of their secret.

    Only keys that verified are kept, each for ``cache_seconds``; a hit still honours the key's expiry to the
    instant. Revoking a key here forgets it at once; another process notices within ``cache_seconds``.
    """

    _MAX = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, _VerifiedKey] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every revocation, so that a lookup begun before it is not kept

    def get(self, digest: str) -> _VerifiedKey | None:
        entry = self._entries.get(digest)
        if entry is None or entry.trusted_until <= time.monotonic():
            return None
        return entry

    def put(self, digest: str, entry: _VerifiedKey, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self._MAX:
                self._entries.clear()
            self._entries[digest] = entry

    def forget(self, key_id: int) -> None:
        with self._lock:
            self.generation += 1
            for digest in [d for d, e in self._entries.items() if e.principal.id == key_id]:
                del self._entries[digest]


_verified: weakref.WeakKeyDictionary[OperationalStore, _VerifiedKeys] = weakref.WeakKeyDictionary()
_verified_lock = threading.Lock()


def _verified_keys(store: OperationalStore) -> _VerifiedKeys:
    cache = _verified.get(store)
    if cache is None:
        with _verified_lock:
            cache = _verified.setdefault(store, _VerifiedKeys())
    return cache


def _unexpired(entry: _VerifiedKey) -> Principal:
    if entry.expires_at is not None and entry.expires_at <= utcnow():
        raise AuthenticationError("the API key has expired")
    return entry.principal


def cached_api_key(store: OperationalStore, key: str) -> Principal | None:
    """The key's principal if this process verified it within its cache time, else None (no I/O)."""
    entry = _verified_keys(store).get(_digest(key))
    return None if entry is None else _unexpired(entry)


def resolve_api_key(store: OperationalStore, key: str, *, cache_seconds: float = 0.0) -> Principal:
    """The API key's principal; a key verified here is trusted for ``cache_seconds`` without asking the store."""
    digest = _digest(key)
    cache = _verified_keys(store)
    entry = cache.get(digest) if cache_seconds > 0 else None
    if entry is None:
        generation = cache.generation
        with store.session() as sess:
            row = sess.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
            if row is None or row.revoked_at is not None:
                raise AuthenticationError("unknown or revoked API key")
            principal = Principal("api_key", row.id, row.name, row.role, frozenset(row.scopes))
            expires_at = None if row.expires_at is None else _aware(row.expires_at)
        entry = _VerifiedKey(principal, expires_at, time.monotonic() + cache_seconds)
        if cache_seconds > 0:
            cache.put(digest, entry, generation)
    return _unexpired(entry)
