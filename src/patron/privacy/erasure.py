"""Erasing a member (right to erasure): one transaction, then the embedded store is compacted.

In one transaction of the operational store:

1. the erasure request is claimed (closed as completed; a second run finds it closed);
2. the member's remaining points, available and pending, are forfeited by one
   balanced ledger transaction (``adjust``, to the ``adjustment`` account);
3. their unused coupons (issued or released) are voided (marked ``expired``);
4. quarantined import rows that identify them (their e-mail, phone or
   customer id) are deleted, and their name, address or birthday is blanked
   out of any other quarantined row;
5. the vault entry and data key are shredded and the key mapping removed;
   a keyed hash of the source customer id is kept so that a later import of
   the same id can be recognised;
6. processing of the orphaned key is restricted for good.

Orders, lines and events stay in the warehouse under the member key, which
no longer leads to a person: the financial record and the KPIs keep them.
On SQLite the deletes overwrite the freed bytes (``secure_delete``) and the
database is then vacuumed and its write-ahead log truncated, so no copy of
an erased value stays in the files. Every statement that touches personal
values goes through SQLAlchemy Core, so the audit's change capture never
sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Table, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from patron.consent import cache
from patron.consent.service import restrict
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.ingest.models import QuarantinedRow
from patron.loyalty.ledger_jobs import settle
from patron.loyalty.ledger_posting import change_lots, lock_wallets, move_wallet, post
from patron.members.models import MemberIdentity
from patron.members.vault import normalize_phone
from patron.members.vault_store import read_personal, shred_member
from patron.privacy.models import ErasureTombstone
from patron.privacy.requests import complete, request_row
from patron.promotions.models import Coupon
from patron.runtime import Runtime

__all__ = ["ERASED", "compact", "erase_member", "erased_source_ids", "forfeit_points", "tombstone_digest"]

log = logging.getLogger(__name__)

ERASED = "[erased]"
_MEMBER_COLUMN = re.compile(r"member|customer|client|user|buyer", re.IGNORECASE)
_CHUNK = 500


def _tombstone_key(runtime: Runtime) -> bytes:
    """Derived from the blind-index system key, which is wrapped by the master key: it survives rotation."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"patron/erasure-tombstone/v2").derive(
        runtime.keys.system_key("blind-index")
    )


def tombstone_digest(runtime: Runtime, source: str, source_id: str, *, key: bytes | None = None) -> str:
    """The keyed hash an erased source customer id is remembered by."""
    key = key or _tombstone_key(runtime)
    return hmac.new(key, f"{source}\x1f{source_id.strip()}".encode(), hashlib.sha256).hexdigest()


def erased_source_ids(runtime: Runtime, source: str, source_ids: list[str]) -> set[str]:
    """The ids among ``source_ids`` of ``source`` that belonged to erased members (for importers to skip).

    The tombstones (one per erased member) are read whole: far fewer than the ids of a large import, and
    an empty table, the usual case, costs one query and no hashing.
    """
    with runtime.store.session() as session:
        tombstones = set(session.scalars(select(ErasureTombstone.digest)))
    if not tombstones:
        return set()
    key = _tombstone_key(runtime)
    return {sid for sid in source_ids if tombstone_digest(runtime, source, sid, key=key) in tombstones}


@dataclass(frozen=True)
class _Traces:
    """What of a member may appear in a quarantined row (held in memory only, during the erasure)."""

    source_id: str | None
    identifying: tuple[str, ...]  # lower-cased e-mail
    phone_digits: str | None
    mentions: tuple[str, ...]  # name, address, birthday: blanked where they appear

    def judge(self, raw: str) -> tuple[bool, str | None]:
        """(whether the row is the member's, the row with their values blanked out or None if untouched)."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"raw": raw}
        fields: dict[str, Any] = parsed if isinstance(parsed, dict) else {"raw": raw}
        for column, value in fields.items():
            if value is None:
                continue
            text_value = str(value).strip()
            lowered = text_value.lower()
            if any(token in lowered for token in self.identifying):
                return True, None
            digits = normalize_phone(text_value).lstrip("+")
            if self.phone_digits and len(digits) >= 7 and self.phone_digits in digits:
                return True, None
            if self.source_id and _MEMBER_COLUMN.search(column) and _same_id(text_value, self.source_id):
                return True, None
        return False, self._blanked(fields)

    def _blanked(self, fields: dict[str, Any]) -> str | None:
        changed = False
        out: dict[str, Any] = {}
        for column, value in fields.items():
            if isinstance(value, str):
                for token in self.mentions:
                    pattern = re.compile(re.escape(token), re.IGNORECASE)
                    if pattern.search(value):
                        value, changed = pattern.sub(ERASED, value), True
            out[column] = value
        return json.dumps(out, ensure_ascii=False) if changed else None


def _same_id(value: str, source_id: str) -> bool:
    if value == source_id:
        return True
    whole = re.fullmatch(r"(\d+)\.0+", value)  # a spreadsheet's "12346.0"
    return whole is not None and whole.group(1) == source_id


def _traces(runtime: Runtime, member_key: str) -> tuple[tuple[str, str] | None, _Traces]:
    with runtime.store.session() as session:
        identity = session.execute(
            select(MemberIdentity.source, MemberIdentity.source_id).where(MemberIdentity.member_key == member_key)
        ).first()
    personal = read_personal(runtime.store, runtime.cipher, member_key) or {}
    email = (personal.get("email") or "").strip().lower()
    phone = normalize_phone(personal.get("phone") or "").lstrip("+")
    mentions = tuple(
        value.strip()
        for name in ("name", "address", "birthday")
        if len((value := personal.get(name) or "").strip()) >= 4
    )
    traces = _Traces(
        source_id=identity[1] if identity else None,
        identifying=(email,) if email else (),
        phone_digits=phone if len(phone) >= 7 else None,
        mentions=mentions + ((email,) if email else ()),
    )
    return (identity[0], identity[1]) if identity else None, traces


def forfeit_points(session: Session, member_key: str, actor: str, memo: str) -> int:
    """Forfeit everything the member holds, available and pending, as one balanced transaction; returns the points.

    Due activations and expiries are settled first, under the member's wallet
    lock, exactly as a redemption would.
    """
    now = utcnow()
    lock_wallets(session, [member_key], now)
    live, _, _ = settle(session, member_key, now)
    available = sum(lot.remaining for lot in live if lot.status == "active")
    pending = sum(lot.remaining for lot in live if lot.status == "pending")
    total = available + pending
    if total == 0:
        return 0
    legs = [
        ("available", member_key, -available),
        ("pending", member_key, -pending),
        ("adjustment", "adjustment", total),
    ]
    txn = post(session, kind="adjust", member_key=member_key, points=total, legs=legs, actor=actor, now=now, memo=memo)
    changes = [
        (lot.id, lot.remaining, "consumed" if lot.status == "active" else "cancelled", None)
        for lot in live
        if lot.remaining > 0
    ]
    change_lots(session, txn.id, changes)
    move_wallet(session, member_key, available=-available, pending=-pending)
    return total


def _void_coupons(session: Session, member_key: str, request_id: int) -> int:
    voided = session.execute(
        update(Coupon)
        .where(Coupon.member_key == member_key, Coupon.status.in_(("issued", "released")))
        .values(status="expired", reason=f"voided: member erased (privacy request {request_id})", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(voided.rowcount)  # type: ignore[attr-defined]


def _purge_quarantine(session: Session, traces: _Traces) -> tuple[int, int]:
    """Delete the quarantined rows that identify the member; blank their values out of the others."""
    if not (traces.source_id or traces.identifying or traces.phone_digits or traces.mentions):
        return 0, 0
    doomed: list[int] = []
    blanked: list[dict[str, Any]] = []
    rows = session.execute(
        select(QuarantinedRow.id, QuarantinedRow.raw).order_by(QuarantinedRow.id).execution_options(yield_per=5000)
    )
    for row_id, raw in rows:
        theirs, cleaned = traces.judge(raw or "")
        if theirs:
            doomed.append(row_id)
        elif cleaned is not None:
            blanked.append({"p_id": row_id, "p_raw": cleaned})
    for start in range(0, len(doomed), _CHUNK):
        session.execute(delete(QuarantinedRow).where(QuarantinedRow.id.in_(doomed[start : start + _CHUNK])))
    if blanked:
        table = cast(Table, QuarantinedRow.__table__)  # a Core table: a list of parameters is one executemany
        statement = update(table).where(table.c.id == bindparam("p_id")).values(raw=bindparam("p_raw"))
        session.connection().execute(statement, blanked)
    return len(doomed), len(blanked)


def _secure_delete(session: Session, on: bool) -> bool | None:
    """On SQLite, make deletes overwrite freed content; returns the previous setting (None elsewhere)."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    previous = bool(session.execute(text("PRAGMA secure_delete")).scalar())
    session.execute(text(f"PRAGMA secure_delete={'ON' if on else 'OFF'}"))
    return previous


def compact(store: OperationalStore) -> None:
    """On SQLite, rewrite the database file and empty the write-ahead log (no stale copies of erased rows).

    Best effort: a checkpoint that other readers keep from finishing finishes at
    a later one; a database kept busy by another writer past the timeout is
    logged and left for the next erasure (the erasure itself is committed).
    """
    if store.dialect != "sqlite":
        return
    try:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except OperationalError as exc:  # another process kept the database busy past the timeout
        log.warning("store not compacted after an erasure; run it again later", extra={"error": str(exc.orig)})


def erase_member(runtime: Runtime, request_id: int, actor: str) -> dict[str, Any]:
    """Carry out an open erasure request (see the module docstring); returns its outcome (counts only)."""
    store = runtime.store
    with store.session() as session:
        row = request_row(session, request_id)
        if row.kind != "erasure":
            raise ConflictError(f"privacy request {request_id} is an {row.kind} request, not an erasure")
        member_key = row.member_key
    identity, traces = _traces(runtime, member_key)
    with store.session() as session:
        previous = _secure_delete(session, True)
        complete(session, request_id, actor, {})  # the claim: a concurrent run of the same request stops here
        memo = f"remaining points forfeited: member erased (privacy request {request_id})"
        outcome: dict[str, Any] = {"points_forfeited": forfeit_points(session, member_key, actor, memo)}
        outcome["coupons_voided"] = _void_coupons(session, member_key, request_id)
        outcome["quarantined_rows_deleted"], outcome["quarantined_rows_blanked"] = _purge_quarantine(session, traces)
        shred_member(session, member_key)
        removed = session.execute(delete(MemberIdentity).where(MemberIdentity.member_key == member_key))
        outcome["identity_removed"] = bool(removed.rowcount)  # type: ignore[attr-defined]
        if identity is not None:
            digest = tombstone_digest(runtime, *identity)
            if session.get(ErasureTombstone, digest) is None:
                session.execute(
                    insert(ErasureTombstone).values(digest=digest, request_id=request_id, erased_at=utcnow())
                )
        restrict(session, member_key, reason="erasure", request_id=request_id, actor=actor)
        request_row(session, request_id).outcome = outcome
        if previous is not None:
            _secure_delete(session, previous)
    del traces, identity
    cache.invalidate(store)
    compact(store)
    log.info("member erased", extra={"member_key": member_key, "request_id": request_id, **outcome})
    return outcome
