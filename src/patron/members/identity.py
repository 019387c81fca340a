"""Source id -> opaque member key mapping, kept in the operational store."""

from __future__ import annotations

import secrets

import polars as pl
from sqlalchemy import insert, select

from patron.db.engine import OperationalStore
from patron.members.models import MemberIdentity

__all__ = ["member_key_of", "new_member_key", "resolve_member_keys", "source_order"]

_CHUNK = 50_000
_LOOKUP = {"member_source_id": pl.String, "member_key": pl.String}


def new_member_key() -> str:
    """A random, meaningless member key (64 bits of entropy, hex)."""
    return "m" + secrets.token_hex(8)


def _existing(store: OperationalStore, source: str) -> pl.DataFrame:
    with store.session() as sess:
        rows = sess.execute(
            select(MemberIdentity.source_id, MemberIdentity.member_key).where(MemberIdentity.source == source)
        ).all()
    return pl.DataFrame(rows, schema=_LOOKUP, orient="row")


def resolve_member_keys(store: OperationalStore, source: str, source_ids: pl.Series) -> pl.DataFrame:
    """Return ``member_source_id -> member_key`` for every id, creating keys for new ones.

    The same (source, source id) always maps to the same key, so re-importing
    a file finds its members again.
    """
    known = _existing(store, source)
    wanted = pl.DataFrame(
        {"member_source_id": source_ids.drop_nulls().unique()}, schema={"member_source_id": pl.String}
    )
    missing = wanted.join(known, on="member_source_id", how="anti").sort("member_source_id")
    if missing.height:
        keys = [new_member_key() for _ in range(missing.height)]
        fresh = missing.with_columns(pl.Series("member_key", keys, dtype=pl.String))
        rows = [
            {"member_key": key, "source": source, "source_id": sid}
            for sid, key in fresh.select("member_source_id", "member_key").iter_rows()
        ]
        with store.engine.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(insert(MemberIdentity), rows[start : start + _CHUNK])
        known = pl.concat([known, fresh.select(known.columns)])
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


def member_key_of(store: OperationalStore, source: str, source_id: str) -> str | None:
    """The member key of one source id, or None if it was never imported."""
    with store.session() as sess:
        return sess.scalar(
            select(MemberIdentity.member_key).where(
                MemberIdentity.source == source, MemberIdentity.source_id == source_id
            )
        )
