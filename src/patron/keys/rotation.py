"""Master-key rotation, key status and retirement of old master keys.

A rotation puts a new master key first in the keyring, then moves every
wrapped key to it: member data keys and system keys are unwrapped with the key
their row names and wrapped again (no personal datum is read), and vault
entries of the older scheme are re-sealed under fresh member data keys. It
works in batches, each its own short transaction, so the API keeps serving:
readers unwrap with whichever master key a row names. Each batch updates a row
only if its wrapped bytes are still the ones read (compare and swap), so a
concurrent write is never overwritten; passes repeat until nothing is left
under an older key. A rotation is idempotent: run again after an interruption,
it finishes the unfinished one instead of making yet another key.
"""

from __future__ import annotations

import fcntl
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, func, select, update

from patron.audit.service import record
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.keys.errors import MissingMasterKeyError
from patron.keys.master import MasterKey, key_id
from patron.keys.models import MemberDataKey, SystemKey
from patron.keys.service import member_owner, system_owner
from patron.members.vault_store import convert_legacy, count_legacy, legacy_member_keys
from patron.progress import NullProgress, Progress
from patron.runtime import Runtime
from patron.settings import Settings

__all__ = ["KeyStatus", "MasterKeyUsage", "RotationReport", "key_status", "retire", "rotate"]

BATCH = 1000
_PASSES = 5
_members = MemberDataKey.__table__
_system = SystemKey.__table__


@dataclass(frozen=True)
class MasterKeyUsage:
    """One master key: whether it is active and held, and how many keys it still wraps."""

    key_id: str
    active: bool
    in_keyring: bool
    member_keys: int
    system_keys: int


@dataclass(frozen=True)
class KeyStatus:
    """The keyring and what each of its keys wraps."""

    source: Literal["file", "environment"]
    keys: tuple[MasterKeyUsage, ...]
    legacy_entries: int

    @property
    def pending(self) -> int:
        """Keys an unfinished rotation still has to move from an older master key to the active one."""
        return sum(k.member_keys + k.system_keys for k in self.keys if not k.active)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pending": self.pending}


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did: its target key, what it moved, what is left."""

    target: str
    previous: tuple[str, ...]
    created: bool
    member_keys: int
    system_keys: int
    converted: int
    remaining: int

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def _usage(runtime: Runtime) -> dict[str, list[int]]:
    """Per master-key id: [member data keys, system keys] wrapped under it."""
    counts: dict[str, list[int]] = {}
    with runtime.store.engine.connect() as conn:
        for slot, table in enumerate((_members, _system)):
            query = select(table.c.master_key_id, func.count()).group_by(table.c.master_key_id)
            for master_id, n in conn.execute(query):
                counts.setdefault(master_id, [0, 0])[slot] = int(n)
    return counts


def key_status(runtime: Runtime) -> KeyStatus:
    """The keyring's keys (newest first), then any key rows name that the keyring lacks."""
    keyring = runtime.keyring
    keyring.reload()
    usage = _usage(runtime)
    held = [key.id for key in keyring.held()]
    rows = [
        MasterKeyUsage(kid, kid == held[0], kid in held, *usage.get(kid, [0, 0]))
        for kid in [*held, *sorted(set(usage) - set(held))]
    ]
    source: Literal["file", "environment"] = "file" if runtime.settings.keyring_in_file else "environment"
    return KeyStatus(source, tuple(rows), count_legacy(runtime.store))


@contextmanager
def _keyring_lock(settings: Settings) -> Iterator[None]:
    """One rotation or retirement at a time per data directory (the key file is rewritten)."""
    if not settings.keyring_in_file:
        yield
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / "master.key.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(runtime: Runtime, new_key: bytes | None) -> None:
    """Put ``new_key`` (or a random key) first in the key file."""
    settings, keyring = runtime.settings, runtime.keyring
    if not settings.keyring_in_file:
        why = (
            "a new key cannot be given here"
            if new_key is not None
            else f"every key is already wrapped under the active master key {keyring.active().id}"
        )
        raise ValidationError(
            f"{why}, and PATRON_MASTER_KEY holds the keyring, so a rotation cannot change it: put a new key first in "
            "PATRON_MASTER_KEY (`patron keys generate` prints one), keep the current keys after it, give every "
            "process the new value, then run `patron keys rotate` again",
            "master_key",
        )
    new_key = new_key or secrets.token_bytes(32)
    if keyring.has(key_id(new_key)):
        raise ValidationError("the new master key is already in the keyring as an older key", "master_key")
    settings.write_key_file([new_key, *(key.secret for key in keyring.held())])
    keyring.reload()


def _require_known(runtime: Runtime, usage: dict[str, list[int]]) -> None:
    unknown = sorted(kid for kid in usage if not runtime.keyring.has(kid))
    if unknown:
        raise MissingMasterKeyError(
            f"keys are wrapped under master key(s) {', '.join(unknown)}, which the keyring lacks: "
            "add them after the active key before rotating",
            unknown,
        )


def _older(runtime: Runtime, table: Any, target: MasterKey) -> int:
    with runtime.store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(table.c.master_key_id != target.id)) or 0)


@dataclass(frozen=True)
class _Pass:
    """What one rewrap pass works on."""

    table: Any
    pk: str
    owner: Any
    target: MasterKey
    size: int


def _rewrap_batch(runtime: Runtime, job: _Pass, after: str) -> list[str]:
    """Move the next batch after ``after`` to the target key; returns the batch's keys (empty when done)."""
    table, pk, owner, target = job.table, job.pk, job.owner, job.target
    query = (
        select(table.c[pk], table.c.master_key_id, table.c.wrapped)
        .where(table.c.master_key_id != target.id, table.c[pk] > after)
        .order_by(table.c[pk])
        .limit(job.size)
    )
    swap = (
        update(table)
        .where(table.c[pk] == bindparam("b_pk"), table.c.wrapped == bindparam("b_old"))
        .values(wrapped=bindparam("b_new"), master_key_id=target.id)
    )
    keyring = runtime.keyring
    with runtime.store.engine.begin() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return []
        params = []
        for key, master_id, wrapped in rows:
            plain = keyring.get(master_id).unwrap(owner(key), bytes(wrapped))
            params.append({"b_pk": key, "b_old": bytes(wrapped), "b_new": target.wrap(owner(key), plain)})
        conn.execute(swap, params)
    return [str(row[0]) for row in rows]


def _rewrap(runtime: Runtime, job: _Pass, progress: Progress) -> int:
    """Rewrap every row of the job's table not under its target, in passes; returns how many there were."""
    total = _older(runtime, job.table, job.target)
    progress.stage(f"Rewrapping {'member data keys' if job.table is _members else 'system keys'}", total=total)
    for _ in range(_PASSES):
        after = ""
        while batch := _rewrap_batch(runtime, job, after):
            progress.advance(len(batch))
            after = batch[-1]
        if _older(runtime, job.table, job.target) == 0:
            break
    return total


def _convert(runtime: Runtime, size: int, progress: Progress) -> int:
    """Re-seal the older scheme's vault entries under member data keys."""
    progress.stage("Converting older vault entries", total=count_legacy(runtime.store))
    converted, after = 0, ""
    while batch := legacy_member_keys(runtime.store, after, size):
        converted += convert_legacy(runtime.store, runtime.cipher, batch)
        progress.advance(len(batch))
        after = batch[-1]
    return converted


def _target(runtime: Runtime, new_key: bytes | None) -> tuple[MasterKey, tuple[str, ...], bool]:
    """Install the new key if this run starts a rotation; returns (target, keys moved from, key created)."""
    runtime.keyring.reload()
    runtime.keys.ensure_system_keys()  # older keys are adopted under the key they were made with
    usage = _usage(runtime)
    _require_known(runtime, usage)
    current = runtime.keyring.active()
    unfinished = any(kid != current.id for kid in usage)
    # With the keyring in the environment and nothing to move, older vault entries can still be converted.
    convert_only = not runtime.settings.keyring_in_file and count_legacy(runtime.store) > 0
    created = (new_key is not None and key_id(new_key) != current.id) or (
        new_key is None and not unfinished and not convert_only
    )
    if created:
        _install(runtime, new_key)
    target = runtime.keyring.active()
    return target, tuple(sorted(kid for kid in usage if kid != target.id)), created


def rotate(
    runtime: Runtime,
    *,
    actor: str,
    new_key: bytes | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> RotationReport:
    """Rotate to a new master key (``new_key``, or a random one), or finish an unfinished rotation.

    With PATRON_MASTER_KEY the keyring comes from the environment: the new key
    must already be first there, and the rotation moves everything to it.
    """
    if batch_size < 1:
        raise ValidationError(f"the batch size must be at least 1, not {batch_size}", "batch_size")
    progress = progress or NullProgress()
    with _keyring_lock(runtime.settings):
        target, previous, created = _target(runtime, new_key)
        details: dict[str, Any] = {"from": list(previous), "new_key": created}
        record(runtime.store, actor, "keys.rotation_started", target.id, details=details)
        try:
            members = _rewrap(runtime, _Pass(_members, "member_key", member_owner, target, batch_size), progress)
            converted = _convert(runtime, batch_size, progress)
            system = _rewrap(runtime, _Pass(_system, "purpose", system_owner, target, batch_size), progress)
        except BaseException:
            record(runtime.store, actor, "keys.rotation_interrupted", target.id, details=details)
            raise
        remaining = _older(runtime, _members, target) + _older(runtime, _system, target) + count_legacy(runtime.store)
        report = RotationReport(target.id, previous, created, members, system, converted, remaining)
        record(runtime.store, actor, "keys.rotated", target.id, details=report.as_dict())
    return report


def retire(runtime: Runtime, retired: str, *, actor: str) -> bool:
    """Drop an older master key that wraps nothing any more; True if it was removed from the key file.

    With PATRON_MASTER_KEY the key is only checked: remove it from the variable yourself.
    """
    settings, keyring = runtime.settings, runtime.keyring
    with _keyring_lock(settings):
        keyring.reload()
        if not keyring.has(retired):
            raise NotFoundError(f"master key {retired} is not in the keyring")
        if keyring.active().id == retired:
            raise ConflictError(f"master key {retired} is the active key: rotate to a new key before retiring it")
        members, system = _usage(runtime).get(retired, [0, 0])
        if members or system:
            raise ConflictError(
                f"master key {retired} still wraps {members:,} member data keys and {system:,} system keys: "
                "finish the rotation (`patron keys rotate`) first"
            )
        removed = settings.keyring_in_file
        if removed:
            settings.write_key_file([key.secret for key in keyring.held() if key.id != retired])
            keyring.reload()
        record(runtime.store, actor, "keys.retired", retired, details={"removed_from_key_file": removed})
    return removed
