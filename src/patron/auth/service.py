"""Operators, password sessions and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from patron.auth.models import ApiKey, Operator, OperatorSession
from patron.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, OperatorCreate, OperatorRead
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import AuthenticationError, ConflictError, NotFoundError
from patron.settings import Settings

__all__ = [
    "Principal",
    "authenticate",
    "create_api_key",
    "create_operator",
    "list_api_keys",
    "list_operators",
    "open_session",
    "resolve_api_key",
    "resolve_session",
    "revoke_api_key",
    "revoke_session",
]

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


def authenticate(store: OperationalStore, username: str, password: str) -> Principal:
    """Check a password; the same work is done whether or not the user exists."""
    with store.session() as sess:
        operator = sess.scalar(select(Operator).where(Operator.username == username))
        stored = operator.password_hash if operator else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise AuthenticationError("wrong username or password") from None
        if operator is None or not operator.is_active:
            raise AuthenticationError("wrong username or password")
        if _hasher.check_needs_rehash(operator.password_hash):
            operator.password_hash = _hasher.hash(password)
        return Principal("operator", operator.id, operator.username, operator.role)


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
        return Principal("operator", operator.id, operator.username, operator.role)


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
        return ApiKeyRead.model_validate(row)


def resolve_api_key(store: OperationalStore, key: str) -> Principal:
    with store.session() as sess:
        row = sess.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
        if row is None or row.revoked_at is not None:
            raise AuthenticationError("unknown or revoked API key")
        if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
            raise AuthenticationError("the API key has expired")
        return Principal("api_key", row.id, row.name, row.role, frozenset(row.scopes))
