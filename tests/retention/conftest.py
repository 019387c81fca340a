"""Retention fixtures: rows planted either side of each category's cutoff, in both stores."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
from sqlalchemy import func, insert, select

from patron.auth.models import Operator, OperatorSession
from patron.db.base import utcnow
from patron.db.idempotency import IdempotencyRecord
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.loyalty.ledger_schemas import EarnRequest
from patron.loyalty.ledger_service import earn_points
from patron.members.models import MemberIdentity
from patron.members.vault_store import write_personal
from patron.recs.registry_models import RecEvent, RecFeedback
from patron.retention.categories import CATEGORIES
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES

DAYS = {c.name: c.default_days for c in CATEGORIES if c.default_days}
SECOND = timedelta(seconds=1)


def cutoff_of(now: datetime, category: str) -> datetime:
    return now - timedelta(days=DAYS[category])


def either_side(now: datetime, category: str) -> tuple[datetime, datetime, datetime]:
    """(a second past the period, exactly at the cutoff, a second within it)."""
    cutoff = cutoff_of(now, category)
    return cutoff - SECOND, cutoff, cutoff + SECOND


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def count(runtime: Runtime, table: type) -> int:
    with runtime.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def warehouse_rows(runtime: Runtime, name: str, rows: list[dict[str, object]]) -> None:
    schema = TABLES[name]
    table = pa.Table.from_pylist(
        [{column: row.get(column) for column in schema.names} for row in rows], schema=schema.to_pyarrow()
    )
    with runtime.warehouse() as warehouse:
        warehouse.ensure_schema()
        warehouse.insert_new(name, table)


def event(key: str, member_key: str | None, at: datetime) -> dict[str, object]:
    return {
        "event_key": key,
        "source": "test",
        "member_key": member_key,
        "event_type": "view",
        "occurred_at": naive(at),
    }


def order(key: str, member_key: str, at: datetime) -> dict[str, object]:
    row = {"order_key": key, "source": "test", "member_key": member_key, "ordered_at": naive(at)}
    return row | {"status": "completed", "amount": 10.0, "discount": 0.0}


@dataclass
class Planted:
    """What was planted per category: keys expected to go and keys expected to stay."""

    now: datetime
    gone: dict[str, set[str]]
    kept: dict[str, set[str]]
    members: dict[str, str] = field(default_factory=dict)  # inactive_members' keys by role in the story


def _plant_rec(runtime: Runtime, now: datetime, planted: Planted) -> None:
    old, edge, young = either_side(now, "rec_events")
    with runtime.store.session() as session:
        for name, at in (("old", old), ("edge", edge), ("young", young)):
            session.add(
                RecEvent(
                    placement="home",
                    variant="a",
                    unit_id="m0000000000000001",
                    item_id="p1",
                    kind="click",
                    occurred_at=at,
                    idempotency_key=f"rec-{name}",
                )
            )
    planted.gone["rec_events"], planted.kept["rec_events"] = {"rec-old"}, {"rec-edge", "rec-young"}
    old, edge, young = either_side(now, "rec_feedback")
    with runtime.store.session() as session:
        for name, at in (("old", old), ("edge", edge), ("young", young)):
            session.add(
                RecFeedback(member_key="m0000000000000001", item_id=f"fb-{name}", event_type="view", occurred_at=at)
            )
    planted.gone["rec_feedback"], planted.kept["rec_feedback"] = {"fb-old"}, {"fb-edge", "fb-young"}


def _plant_keys_and_quarantine(runtime: Runtime, now: datetime, planted: Planted) -> None:
    old, edge, young = either_side(now, "idempotency_records")
    with runtime.store.session() as session:
        for name, at in (("old", old), ("edge", edge), ("young", young)):
            session.add(
                IdempotencyRecord(scope="test", key=f"key-{name}", request_hash="0" * 64, response={}, created_at=at)
            )
    planted.gone["idempotency_records"], planted.kept["idempotency_records"] = {"key-old"}, {"key-edge", "key-young"}
    old, edge, young = either_side(now, "quarantined_rows")
    with runtime.store.session() as session:
        for name, at in (("old", old), ("edge", edge), ("young", young)):
            run = ImportRun(format="generic", source_name=f"run-{name}", sha256="", started_at=at, status="completed")
            session.add(run)
            session.flush()
            session.add(
                QuarantinedRow(run_id=run.id, row_number=1, field="email", reason="e-mail without '@'", raw=name)
            )
    planted.gone["quarantined_rows"], planted.kept["quarantined_rows"] = {"old"}, {"edge", "young"}


def _plant_sessions(runtime: Runtime, now: datetime, planted: Planted) -> None:
    old, edge, young = either_side(now, "operator_sessions")
    with runtime.store.session() as session:
        operator = Operator(username=f"retention-{secrets.token_hex(3)}", password_hash="x", role="support")
        session.add(operator)
        session.flush()
        for name, seen, revoked in (("idle-old", old, False), ("revoked-old", old, True), ("edge", edge, False)):
            session.add(
                OperatorSession(
                    token_hash=name.ljust(64, "0"),
                    operator_id=operator.id,
                    created_at=seen,
                    last_seen_at=seen,
                    revoked=revoked,
                )
            )
        session.add(
            OperatorSession(
                token_hash="young".ljust(64, "0"), operator_id=operator.id, created_at=young, last_seen_at=young
            )
        )
        session.add(
            OperatorSession(token_hash="live".ljust(64, "0"), operator_id=operator.id, created_at=now, last_seen_at=now)
        )
    planted.gone["operator_sessions"] = {"idle-old", "revoked-old"}
    planted.kept["operator_sessions"] = {"edge", "young", "live"}


def _plant_events(runtime: Runtime, now: datetime, planted: Planted) -> None:
    old, edge, young = either_side(now, "behaviour_events")
    warehouse_rows(
        runtime, "events", [event("ev-old", None, old), event("ev-edge", None, edge), event("ev-young", None, young)]
    )
    planted.gone["behaviour_events"], planted.kept["behaviour_events"] = {"ev-old"}, {"ev-edge", "ev-young"}


def _identity(runtime: Runtime, key: str, created: datetime) -> None:
    with runtime.store.session() as session:
        session.execute(insert(MemberIdentity).values(member_key=key, source="test", source_id=key, created_at=created))


def _plant_members(runtime: Runtime, now: datetime, planted: Planted) -> None:
    old, edge, young = either_side(now, "inactive_members")
    long_ago = old - timedelta(days=30)
    keys = {
        name: "m" + secrets.token_hex(8) for name in ("lapsed", "edge", "ordered", "viewed", "earned", "joined", "new")
    }
    for name, key in keys.items():
        _identity(runtime, key, young if name == "new" else long_ago)
    write_personal(
        runtime.store, runtime.cipher, [(keys["lapsed"], {"name": "Lapsed Person", "email": "lapsed@example.com"})]
    )
    warehouse_rows(
        runtime,
        "orders",
        [
            order("o-lapsed", keys["lapsed"], old),
            order("o-edge", keys["edge"], edge),
            order("o-ordered", keys["ordered"], young),
        ],
    )
    # within both periods: a view older than behaviour_events' period is gone, and no longer counts
    warehouse_rows(runtime, "events", [event("ev-viewed", keys["viewed"], now - timedelta(days=100))])
    warehouse_rows(
        runtime,
        "members",
        [
            {"member_key": keys["joined"], "source": "test", "signup_at": naive(young)},
            {"member_key": keys["lapsed"], "source": "test", "signup_at": naive(long_ago)},
        ],
    )
    earn_points(runtime.store, secrets.token_hex(8), keys["earned"], EarnRequest(points=5, reference="order-e"), "test")
    planted.members = keys
    planted.gone["inactive_members"] = {keys["lapsed"]}
    planted.kept["inactive_members"] = {keys[name] for name in keys if name != "lapsed"}


@pytest.fixture
def planted(runtime: Runtime) -> Iterator[Planted]:
    """Rows a second past, exactly at and a second within each category's period (defaults), at ``now``."""
    now = utcnow()
    result = Planted(now=now, gone={}, kept={})
    for plant in (_plant_rec, _plant_keys_and_quarantine, _plant_sessions, _plant_events, _plant_members):
        plant(runtime, now, result)
    yield result
