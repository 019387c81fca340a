"""Store-level ledger operations: one transaction each, writes behind an idempotency key.

A write returns ``(result, replayed)``: the same key with the same request
returns the first result (``replayed`` true) without writing again; the same
key with another request is a ConflictError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.db.idempotency import run_idempotent, run_idempotent_in_database
from patron.errors import ValidationError
from patron.loyalty import ledger, ledger_calls
from patron.loyalty.ledger_calls import DatabaseCall, DriverCursor, run_call
from patron.loyalty.ledger_jobs import Progress
from patron.loyalty.ledger_posting import check_member_key
from patron.loyalty.ledger_schemas import (
    AdjustRequest,
    BalanceRead,
    EarnRequest,
    JobResult,
    LedgerPage,
    LedgerTransactionRead,
    LotRead,
    RedeemRequest,
    ReverseRequest,
    ReverseResult,
)

__all__ = [
    "adjust_points",
    "earn_points",
    "get_balance",
    "get_history",
    "get_lots",
    "redeem_points",
    "reverse_points",
    "run_activation",
    "run_expiry",
]


def _request(member_key: str | None, body: Any) -> dict[str, Any]:
    data: dict[str, Any] = body.model_dump(mode="json")
    if member_key is not None:
        data["member_key"] = member_key
    return data


def _write(
    store: OperationalStore,
    scope: str,
    key: str,
    request: dict[str, Any],
    build: Callable[[], DatabaseCall],
    action: Callable[[Session], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """One idempotent write: on PostgreSQL one database call, else ``action`` under :func:`run_idempotent`."""
    if store.dialect == "postgresql":
        try:
            call = build()
        except ValidationError:
            pass  # checked again after the key by the general path, so a replay still replays
        else:

            def run(cursor: DriverCursor, digest: str) -> tuple[dict[str, Any], bool]:
                return run_call(cursor, call, scope, key, digest)

            return run_idempotent_in_database(store, key, request, run)
    return run_idempotent(store, scope, key, request, action)


def earn_points(
    store: OperationalStore, idempotency_key: str, member_key: str, body: EarnRequest, actor: str
) -> tuple[LedgerTransactionRead, bool]:
    """Credit points (see :func:`patron.loyalty.ledger.earn`) once per idempotency key."""
    check_member_key(member_key)

    def action(session: Session) -> dict[str, Any]:
        txn = ledger.earn(session, member_key=member_key, actor=actor, **body.model_dump())
        return txn.model_dump(mode="json")

    def build() -> DatabaseCall:
        return ledger_calls.earn_call(member_key=member_key, actor=actor, **body.model_dump())

    response, replayed = _write(store, "points.earn", idempotency_key, _request(member_key, body), build, action)
    return LedgerTransactionRead.model_validate(response), replayed


def redeem_points(
    store: OperationalStore, idempotency_key: str, member_key: str, body: RedeemRequest, actor: str
) -> tuple[LedgerTransactionRead, bool]:
    """Spend points (see :func:`patron.loyalty.ledger.redeem`) once per idempotency key."""
    check_member_key(member_key)

    def action(session: Session) -> dict[str, Any]:
        txn = ledger.redeem(session, member_key=member_key, actor=actor, **body.model_dump())
        return txn.model_dump(mode="json")

    def build() -> DatabaseCall:
        return ledger_calls.redeem_call(member_key=member_key, actor=actor, **body.model_dump())

    response, replayed = _write(store, "points.redeem", idempotency_key, _request(member_key, body), build, action)
    return LedgerTransactionRead.model_validate(response), replayed


def adjust_points(
    store: OperationalStore, idempotency_key: str, member_key: str, body: AdjustRequest, actor: str
) -> tuple[LedgerTransactionRead, bool]:
    """A manual correction (see :func:`patron.loyalty.ledger.adjust`) once per idempotency key."""
    check_member_key(member_key)

    def action(session: Session) -> dict[str, Any]:
        txn = ledger.adjust(session, member_key=member_key, points=body.points, reason=body.reason, actor=actor)
        return txn.model_dump(mode="json")

    def build() -> DatabaseCall:
        return ledger_calls.adjust_call(member_key=member_key, points=body.points, reason=body.reason, actor=actor)

    response, replayed = _write(store, "points.adjust", idempotency_key, _request(member_key, body), build, action)
    return LedgerTransactionRead.model_validate(response), replayed


def reverse_points(
    store: OperationalStore, idempotency_key: str, body: ReverseRequest, actor: str
) -> tuple[ReverseResult, bool]:
    """Reverse what was recorded under a reference (see :func:`patron.loyalty.ledger.reverse`)."""

    def action(session: Session) -> dict[str, Any]:
        txn = ledger.reverse(session, reference=body.reference, actor=actor, reason=body.reason)
        return ReverseResult(reversal=txn).model_dump(mode="json")

    def build() -> DatabaseCall:
        return ledger_calls.reverse_call(reference=body.reference, actor=actor, reason=body.reason)

    response, replayed = _write(store, "points.reverse", idempotency_key, _request(None, body), build, action)
    return ReverseResult.model_validate(response), replayed


def get_balance(store: OperationalStore, member_key: str) -> BalanceRead:
    """The member's balances."""
    with store.session() as session:
        return ledger.balance(session, member_key)


def get_lots(store: OperationalStore, member_key: str) -> list[LotRead]:
    """The member's lots, oldest first."""
    with store.session() as session:
        return ledger.lots(session, member_key)


def get_history(store: OperationalStore, member_key: str, page: int = 1, page_size: int = 50) -> LedgerPage:
    """The member's transactions, newest first."""
    with store.session() as session:
        return ledger.history(session, member_key, page, page_size)


def run_activation(store: OperationalStore, as_of: datetime | None = None) -> JobResult:
    """Activate every pending lot whose window has ended by ``as_of`` (default now)."""
    moment = as_of or utcnow()
    with store.session() as session:
        count = ledger.activate_due(session, moment)
    return JobResult(job="activate", as_of=moment, lots=count)


def run_expiry(store: OperationalStore, as_of: datetime | None = None, progress: Progress | None = None) -> JobResult:
    """Expire every lot due by ``as_of`` (default now), one member per transaction."""
    moment = as_of or utcnow()
    return JobResult(job="expire", as_of=moment, lots=ledger.expire_due(store, moment, progress))
