"""The data categories retention knows, with their default periods and how each is counted and purged.

===================== =========== ========= ======= ===========================================================
category              place       action    default rows that go
===================== =========== ========= ======= ===========================================================
behaviour_events      warehouse   delete    730 d   clickstream events that occurred before the cutoff
rec_events            operational delete    395 d   recommendation impressions, clicks and purchases
rec_feedback          operational delete    90 d    interactions reported to serving (replayed into engines)
operator_sessions     operational delete    30 d    sessions that can no longer be used, last used before it
idempotency_records   operational delete    30 d    stored first responses to idempotency keys
quarantined_rows      operational delete    90 d    rows quarantined by import runs started before the cutoff
inactive_members      operational anonymize 1095 d  members with no trace of activity since: vault and key
                                                    mapping go (as an erasure), their orders stay, anonymous
audit_log             operational keep      -       append-only hash chain: kept (see ``note``)
orders                warehouse   keep      -       the financial record: kept; a member's link goes on erasure
===================== =========== ========= ======= ===========================================================

A row exactly at the cutoff (``now - days``) is kept; only what is older goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ibis.backends.duckdb import Backend as DuckDBBackend
from sqlalchemy import ColumnElement, Select, delete, func, or_, select

from patron.auth.models import OperatorSession
from patron.db.engine import OperationalStore
from patron.db.idempotency import IdempotencyRecord
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.progress import Progress
from patron.recs.registry_models import RecEvent, RecFeedback
from patron.retention.inactive import anonymize, inactive_members, naive_utc
from patron.retention.schemas import Action, Place
from patron.settings import Settings
from patron.warehouse.store import Warehouse

__all__ = ["CATEGORIES", "Category", "Target"]


@dataclass(frozen=True)
class Target:
    """What a run works on: the operational store, the warehouse (None if it does not exist yet), settings."""

    store: OperationalStore
    warehouse: Warehouse | None
    settings: Settings
    now: datetime


Measure = Callable[[Target, datetime, Progress], int]


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    place: Place
    action: Action
    default_days: int | None
    count: Measure | None = None  # how many rows (members) are older than the cutoff
    purge: Measure | None = None  # delete (anonymize) them; returns how many
    note: str = ""


# --- operational tables -------------------------------------------------------------------


def _counted(store: OperationalStore, table: type, where: ColumnElement[bool]) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(where)) or 0)


def _deleted(store: OperationalStore, table: type, where: ColumnElement[bool]) -> int:
    with store.session() as session:
        return int(session.execute(delete(table).where(where)).rowcount or 0)  # type: ignore[attr-defined]


def _table_rule(table: type, where: Callable[[Target, datetime], ColumnElement[bool]]) -> tuple[Measure, Measure]:
    def count(target: Target, cutoff: datetime, _progress: Progress) -> int:
        return _counted(target.store, table, where(target, cutoff))

    def purge(target: Target, cutoff: datetime, _progress: Progress) -> int:
        return _deleted(target.store, table, where(target, cutoff))

    return count, purge


def _unusable_session(target: Target, cutoff: datetime) -> ColumnElement[bool]:
    """Sessions last used before the cutoff that can no longer be used (revoked, idle or too old)."""
    idle = target.now - timedelta(minutes=target.settings.session_idle_minutes)
    born = target.now - timedelta(hours=target.settings.session_absolute_hours)
    ended = or_(
        OperatorSession.revoked.is_(True), OperatorSession.last_seen_at < idle, OperatorSession.created_at < born
    )
    return (OperatorSession.last_seen_at < cutoff) & ended


def _old_runs(cutoff: datetime) -> Select[int]:
    return select(ImportRun.id).where(ImportRun.started_at < cutoff)


_REC_EVENTS = _table_rule(RecEvent, lambda _t, cutoff: RecEvent.occurred_at < cutoff)
_REC_FEEDBACK = _table_rule(RecFeedback, lambda _t, cutoff: RecFeedback.occurred_at < cutoff)
_SESSIONS = _table_rule(OperatorSession, _unusable_session)
_IDEMPOTENCY = _table_rule(IdempotencyRecord, lambda _t, cutoff: IdempotencyRecord.created_at < cutoff)
_QUARANTINE = _table_rule(QuarantinedRow, lambda _t, cutoff: QuarantinedRow.run_id.in_(_old_runs(cutoff)))


# --- the warehouse ------------------------------------------------------------------------


def _warehouse_events(target: Target, cutoff: datetime, _progress: Progress) -> int:
    if target.warehouse is None:
        return 0
    events = target.warehouse.table("events")
    return int(events.filter(events.occurred_at < naive_utc(cutoff)).count().execute())


def _purge_events(target: Target, cutoff: datetime, progress: Progress) -> int:
    warehouse = target.warehouse
    if warehouse is None:
        return 0
    doomed = _warehouse_events(target, cutoff, progress)
    if not doomed:
        return 0
    moment = naive_utc(cutoff)
    with warehouse.transaction():
        if isinstance(warehouse.con, DuckDBBackend):
            warehouse.con.con.execute("DELETE FROM events WHERE occurred_at < ?", [moment])
        else:  # another engine behind Ibis: the moment is our own datetime, not user text
            stamp = moment.isoformat(sep=" ")
            warehouse.con.raw_sql(f"DELETE FROM events WHERE occurred_at < TIMESTAMP '{stamp}'").close()  # noqa: S608
    return doomed


# --- members --------------------------------------------------------------------------------


def _count_inactive(target: Target, cutoff: datetime, _progress: Progress) -> int:
    return len(inactive_members(target.store, target.warehouse, cutoff))


def _anonymize_inactive(target: Target, cutoff: datetime, progress: Progress) -> int:
    return anonymize(target.store, inactive_members(target.store, target.warehouse, cutoff), progress)


CATEGORIES: tuple[Category, ...] = (
    Category(
        "behaviour_events",
        "clickstream events (views, favourites, carts, purchases) in the warehouse",
        "warehouse",
        "delete",
        730,
        _warehouse_events,
        _purge_events,
        "the current build's copy goes with the next build; a re-import of old files brings them back until the "
        "next run",
    ),
    Category(
        "rec_events",
        "impressions, clicks and purchases of recommended items",
        "operational",
        "delete",
        395,
        *_REC_EVENTS,
        "variant comparisons cover what is left",
    ),
    Category(
        "rec_feedback",
        "member interactions reported to recommendation serving",
        "operational",
        "delete",
        90,
        *_REC_FEEDBACK,
        "models trained since carry what they learnt",
    ),
    Category(
        "operator_sessions",
        "operator sessions that ended (signed out, idle or too old)",
        "operational",
        "delete",
        30,
        *_SESSIONS,
    ),
    Category(
        "idempotency_records",
        "first responses stored for idempotency keys",
        "operational",
        "delete",
        30,
        *_IDEMPOTENCY,
        "a retry older than the period is not replayed; ledger references still refuse a second posting",
    ),
    Category(
        "quarantined_rows",
        "rows that import runs quarantined, with their reasons",
        "operational",
        "delete",
        90,
        *_QUARANTINE,
        "the import run keeps its counts",
    ),
    Category(
        "inactive_members",
        "members with no order, event, sign-up, points earned or spent, or interaction since the cutoff",
        "operational",
        "anonymize",
        1095,
        _count_inactive,
        _anonymize_inactive,
        "their personal data is shredded and the key mapping removed, as an erasure; orders stay, anonymous",
    ),
    Category(
        "audit_log",
        "who did what, when and from where",
        "operational",
        "keep",
        None,
        note="append-only hash chain (triggers refuse deletes); it holds member keys, never personal values; "
        "archive it with `patron audit export`",
    ),
    Category(
        "orders",
        "orders and order lines",
        "warehouse",
        "keep",
        None,
        note="the financial record; an anonymized or erased member's orders stay under a key nobody can link",
    ),
)
