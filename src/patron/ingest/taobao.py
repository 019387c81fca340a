"""Taobao UserBehavior (Alibaba Tianchi): user_id, item_id, category_id, behavior, timestamp.

No header, comma-separated. Choices, documented in docs/import.md:

- each row is one event: ``pv`` -> view, ``fav`` -> fav, ``cart`` -> cart,
  ``buy`` -> purchase; buy events do not become orders (the data has no prices);
- ``occurred_at`` is the unix time in Asia/Shanghai local time, stored as a
  naive timestamp (the shop's wall clock);
- the event key ``taobao:<user>:<item>:<behavior>:<ts>:<n>`` numbers identical
  rows in file order, so it is stable across re-imports of the same file;
- members come from user ids (signup = first event), products from item ids
  with their most frequent category;
- quarantined: a wrong number of fields, missing or non-integer ids, an
  unknown behavior, a timestamp that is not a whole number or falls outside
  1970..2100.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from patron.errors import ImportFormatError
from patron.ingest.cdnow import LINE, SplitLines, read_lines, require_digits, split_fields, strip_zeros
from patron.ingest.contract import Importer, ParsedBatch
from patron.ingest.validation import ROW, RowValidator
from patron.progress import NullProgress, Progress

__all__ = ["EVENT_TYPES", "TaobaoImporter"]

SOURCE = "taobao"
TIME_ZONE = "Asia/Shanghai"
COLUMNS = ["user_id", "item_id", "category_id", "behavior", "timestamp"]
EVENT_TYPES = {"pv": "view", "fav": "fav", "cart": "cart", "buy": "purchase"}
_LAST_SECOND = 4_102_444_800  # 2100-01-01 00:00:00 UTC


class TaobaoImporter(Importer):
    """Behaviour events of the Taobao UserBehavior file."""

    format: ClassVar[str] = "taobao"
    summary: ClassVar[str] = "Taobao UserBehavior events (headerless CSV, optionally gzipped)"

    def parse(self, progress: Progress = NullProgress()) -> ParsedBatch:  # noqa: B008
        progress.stage("read", None)
        split = self._read()
        progress.stage("validate", None)
        rows, quarantine = _validate(split.text)
        rows = rows.join(_event_keys(split.text), on=ROW, how="left", maintain_order="left")
        events = _events(rows)
        return ParsedBatch(
            source=SOURCE,
            rows_read=split.rows_read,
            primary="events",
            quarantine=pl.concat([split.ragged, quarantine]).sort("row_number"),
            members=_members(events),
            products=_products(events),
            events=events,
            notes={"events_by_type": dict(events["event_type"].value_counts().iter_rows())},
        )

    def _read(self) -> SplitLines:
        split = split_fields(read_lines(self.path), COLUMNS, pl.col(LINE).str.split(","), first_row=1)
        if split.text.height == 0 and split.ragged.height > 0:
            raise ImportFormatError(f"{self.path.name} {_layout_problem(split.ragged)}")
        return split


def _layout_problem(ragged: pl.DataFrame) -> str:
    """Describe a file none of whose rows has the five columns."""
    widths = ragged["reason"].str.extract(r"found (\d+)$").cast(pl.Int64).drop_nulls()
    common = int(widths.mode().sort()[0]) if widths.len() else 0
    if 0 < common < len(COLUMNS):
        return f"lacks the column(s): {', '.join(COLUMNS[common:])} (rows have {common} fields)"
    return f"has no row with the {len(COLUMNS)} columns {', '.join(COLUMNS)}"


def _validate(text: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    check = RowValidator(text)
    for column in ("user_id", "item_id", "category_id"):
        require_digits(check, column)
    behavior = pl.col("behavior").str.to_lowercase()
    check.require("behavior")
    known = ", ".join(EVENT_TYPES)
    check.check(
        behavior.is_not_null() & ~behavior.is_in(list(EVENT_TYPES)), "behavior", f"unknown behavior (not {known})"
    )
    seconds = check.integer("timestamp")
    check.check((seconds < 0) | (seconds >= _LAST_SECOND), "timestamp", "timestamp outside 1970..2100")
    return check.split()


def _event_keys(text: pl.DataFrame) -> pl.DataFrame:
    """Key every row by its content and its position among identical rows."""
    parts = [strip_zeros("user_id"), strip_zeros("item_id"), pl.col("behavior").str.to_lowercase(), pl.col("timestamp")]
    base = pl.concat_str(pl.lit(SOURCE), *parts, separator=":", ignore_nulls=True)
    ordinal = pl.int_range(1, pl.len() + 1).over(base).cast(pl.String)
    return text.select(ROW, pl.concat_str(base, ordinal, separator=":").alias("event_key"))


def _local_time(seconds: pl.Expr) -> pl.Expr:
    """Convert unix seconds to naive Asia/Shanghai wall-clock time."""
    utc = pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC")
    return utc.dt.convert_time_zone(TIME_ZONE).dt.replace_time_zone(None).dt.cast_time_unit("us")


def _events(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        "event_key",
        strip_zeros("user_id").alias("member_source_id"),
        pl.lit(None, dtype=pl.String).alias("session_id"),
        (pl.lit(SOURCE + ":") + strip_zeros("item_id")).alias("product_key"),
        strip_zeros("category_id").alias("category"),
        pl.col("behavior").str.to_lowercase().replace_strict(EVENT_TYPES).alias("event_type"),
        _local_time(pl.col("timestamp")).alias("occurred_at"),
        pl.col(ROW).alias("row_number"),
    )


def _members(events: pl.DataFrame) -> pl.DataFrame:
    return events.group_by(pl.col("member_source_id").alias("source_id"), maintain_order=True).agg(
        pl.col("occurred_at").min().alias("signup_at")
    )


def _products(events: pl.DataFrame) -> pl.DataFrame:
    return events.group_by("product_key", maintain_order=True).agg(
        pl.col("category").mode().sort().first().alias("category")
    )
