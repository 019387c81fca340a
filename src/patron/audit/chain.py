"""The audit log's hash chain: appending a link and verifying the whole chain.

Each entry's hash is HMAC-SHA256, under the audit-chain system key (a key of
its own, stored wrapped by the master key, see patron.keys), of the previous
entry's hash and the entry's canonical fields (sequence number, time, actor,
action, target, source address, details). A master-key rotation only rewraps
that key, so the chain keeps verifying. Someone who
can write the database but does not hold the master key can therefore
neither alter an entry nor rebuild the chain after a change; deleting an
entry leaves a gap in the sequence, and cutting off the newest entries
leaves the chain head pointing past the end.

Appending locks the single head row first (an UPDATE), which serializes
writers on PostgreSQL (row lock) and SQLite (the write lock) alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit.models import AuditChainHead, AuditEntry
from patron.db.engine import OperationalStore

__all__ = ["GENESIS", "ChainReport", "append", "chain_key", "entry_digest", "iter_entries", "verify_chain"]

GENESIS = "0" * 64
_BATCH = 5000


def chain_key(master: bytes) -> bytes:
    """The chain key older versions derived from the master key (adopted as the system key by their data)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"patron/audit-chain/v1").derive(master)


def _utc(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_digest(key: bytes, prev_hash: str, entry: AuditEntry | dict[str, Any]) -> str:
    """The link hash of one entry after ``prev_hash``."""
    fields = entry if isinstance(entry, dict) else _fields(entry)
    canonical = json.dumps(
        {
            "seq": fields["seq"],
            "at": _utc(fields["at"]) if isinstance(fields["at"], datetime) else fields["at"],
            "actor": fields["actor"],
            "action": fields["action"],
            "target": fields["target"],
            "source_ip": fields["source_ip"],
            "details": fields["details"] or {},
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hmac.new(key, f"{prev_hash}\n{canonical}".encode(), hashlib.sha256).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "source_ip": entry.source_ip,
        "details": entry.details,
    }


def _lock_head(sess: Session) -> tuple[int, str]:
    """Advance the head's sequence number (taking the lock); returns (new seq, previous hash)."""
    for _ in range(3):
        row = sess.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(seq=AuditChainHead.seq + 1)
            .returning(AuditChainHead.seq, AuditChainHead.last_hash)
        ).one_or_none()
        if row is not None:
            return int(row[0]), str(row[1])
        try:
            with sess.begin_nested():
                sess.add(AuditChainHead(id=1, seq=0, last_hash=GENESIS))
        except IntegrityError:
            continue  # another writer created it first
    raise RuntimeError("the audit chain head could not be locked")


def append(sess: Session, key: bytes, entry: AuditEntry) -> AuditEntry:
    """Link ``entry`` to the chain and add it to the session (committed with the caller's transaction)."""
    seq, prev = _lock_head(sess)
    entry.seq = seq
    entry.prev_hash = prev
    entry.details = entry.details or {}
    entry.entry_hash = entry_digest(key, prev, entry)
    sess.add(entry)
    sess.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(last_hash=entry.entry_hash))
    return entry


@dataclass(frozen=True)
class ChainReport:
    """What verification found: ``ok`` only if every link and the head agree."""

    ok: bool
    entries: int
    unchained: int
    head_seq: int
    problem: str | None = None
    entry_id: int | None = None
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "unchained": self.unchained,
            "head_seq": self.head_seq,
            "problem": self.problem,
            "entry_id": self.entry_id,
            "seq": self.seq,
        }


def iter_entries(store: OperationalStore) -> Iterator[AuditEntry]:
    """Chained entries in sequence order, read in batches."""
    last = 0
    while True:
        with store.session() as sess:
            rows = list(
                sess.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(_BATCH))
            )
        if not rows:
            return
        yield from rows
        last = int(rows[-1].seq or 0)


def verify_chain(store: OperationalStore, key: bytes, progress: Any = None) -> ChainReport:
    """Walk the chain from the first link; report the first break, if any."""
    with store.session() as sess:
        head = sess.get(AuditChainHead, 1)
        unchained = len(list(sess.scalars(select(AuditEntry.id).where(AuditEntry.seq.is_(None)))))
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), head.last_hash)
    if progress is not None:
        progress.stage("Verifying the audit chain", total=head_seq)
    prev, expected, count = GENESIS, 1, 0

    def broken(problem: str, entry: AuditEntry | None = None, seq: int | None = None) -> ChainReport:
        return ChainReport(
            False, count, unchained, head_seq, problem, None if entry is None else entry.id, seq or expected
        )

    for entry in iter_entries(store):
        if entry.seq != expected:
            return broken(f"entries {expected}..{int(entry.seq or 0) - 1} are missing", entry, expected)
        if entry.prev_hash != prev:
            return broken(f"entry {entry.seq} does not link to the entry before it", entry)
        if entry.entry_hash != entry_digest(key, prev, entry):
            return broken(f"entry {entry.seq} was altered after it was written", entry)
        prev, expected, count = str(entry.entry_hash), expected + 1, count + 1
        if progress is not None:
            progress.advance()
    if count != head_seq:
        return broken(f"the chain ends at {count} but its head says {head_seq}: newest entries are missing")
    if prev != head_hash:
        return broken("the last entry does not match the chain head")
    return ChainReport(True, count, unchained, head_seq)
