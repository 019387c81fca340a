"""Source id -> opaque member key mapping, kept in the operational store."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import polars as pl
from sqlalchemy import insert, select

from patron.db.engine import OperationalStore
from patron.members.models import MemberIdentity

__all__ = ["new_member_key", "resolve_member_keys", "source_order"]

_CHUNK = 50_000


def new_member_key() -> str:
    """A random, meaningless member key (64 bits of entropy, hex)."""
    return "m" + secrets.token_hex(8)


def _existing(store: OperationalStore, source: str) -> dict[str, str]:
    with store.session() as sess:
        rows = sess.execute(
            select(MemberIdentity.source_id, MemberIdentity.member_key).where(MemberIdentity.source == source)
        )
        return {source_id: key for source_id, key in rows}


def resolve_member_keys(store: OperationalStore, source: str, source_ids: Iterable[str]) -> dict[str, str]:
    """Return the member key of every source id, creating keys for new ones.

    The same (source, source id) always maps to the same key, so re-importing
    a file finds its members again.
    """
    known = _existing(store, source)
    missing = sorted({sid for sid in source_ids if sid not in known})
    fresh = [{"member_key": new_member_key(), "source": source, "source_id": sid} for sid in missing]
    if fresh:
        with store.session() as sess:
            for start in range(0, len(fresh), _CHUNK):
                sess.execute(insert(MemberIdentity), fresh[start : start + _CHUNK])
        known.update({row["source_id"]: row["member_key"] for row in fresh})
    return known


def source_order(store: OperationalStore) -> pl.DataFrame:
    """Rank of every member within its source's customer-id order.

    Ids that are all whole numbers sort numerically, others as text. Only the
    rank leaves the operational store.
    """
    with store.session() as sess:
        rows = sess.execute(select(MemberIdentity.source, MemberIdentity.source_id, MemberIdentity.member_key)).all()
    frame = pl.DataFrame(
        rows, schema={"source": pl.String, "source_id": pl.String, "member_key": pl.String}, orient="row"
    )
    parts = []
    for (source,), part in frame.group_by("source"):
        numeric = part["source_id"].str.contains(r"^\d+$").all()
        sort_key = pl.col("source_id").cast(pl.Decimal(38, 0)) if numeric else pl.col("source_id")
        ranked = part.sort(sort_key).with_columns(pl.int_range(1, pl.len() + 1).alias("source_rank"))
        parts.append(ranked.select("member_key", pl.lit(source).alias("source"), "source_rank"))
    if not parts:
        return pl.DataFrame(schema={"member_key": pl.String, "source": pl.String, "source_rank": pl.Int64})
    return pl.concat(parts).cast({"source_rank": pl.Int64})
