"""CDNOW purchase log (Fader & Hardie): customer_id, date, number_of_cds, dollar_value.

The file is whitespace-separated with one header line. Choices, documented in
docs/import.md:

- each row is one completed order with one line (product ``cdnow:cd``); the
  order key is ``cdnow:<customer>:<date>:<n>`` where ``n`` numbers the rows of
  that customer and day in file order, so repeated purchases stay apart;
- customer ids lose their leading zeros (``00001`` -> ``1``) so they sort
  numerically; a member's signup is their first purchase;
- quarantined: a wrong number of fields, a missing or non-numeric customer id,
  a date that is not a valid YYYYMMDD, a negative or fractional number of
  CDs, a negative or non-numeric dollar value.

The line reader here also serves other line-oriented formats (taobao).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl

from patron.errors import ImportFormatError
from patron.ingest.contract import QUARANTINE_SCHEMA, Importer, ParsedBatch
from patron.ingest.validation import ROW, RowValidator, table_error
from patron.progress import NullProgress, Progress

__all__ = ["CdnowImporter", "SplitLines", "read_lines", "require_digits", "split_fields", "strip_zeros"]

SOURCE = "cdnow"
COLUMNS = ["customer_id", "date", "number_of_cds", "dollar_value"]
PRODUCT_KEY = "cdnow:cd"
LINE = "__line"
WHOLE_ROW = "(row)"


@dataclass
class SplitLines:
    """Rows split into named text columns, and the rows with a wrong number of fields."""

    text: pl.DataFrame
    ragged: pl.DataFrame

    @property
    def rows_read(self) -> int:
        return self.text.height + self.ragged.height


def read_lines(path: Path) -> pl.DataFrame:
    """Read every line of a text file (optionally gzipped) as one stripped string column."""
    if not path.exists():
        raise ImportFormatError(f"file not found: {path.name}")
    try:
        frame = pl.read_csv(
            path, has_header=False, separator="\x1f", quote_char=None, infer_schema=False, new_columns=[LINE]
        )
    except pl.exceptions.NoDataError:
        return pl.DataFrame(schema={LINE: pl.String})
    except pl.exceptions.PolarsError as exc:
        raise ImportFormatError(f"{path.name} cannot be read as text lines: {table_error(exc)}") from exc
    return frame.with_columns(pl.col(LINE).fill_null("").str.strip_prefix("\ufeff").str.strip_chars())


def split_fields(lines: pl.DataFrame, columns: list[str], fields: pl.Expr, *, first_row: int) -> SplitLines:
    """Split each line with ``fields`` (a list expression); lines of the wrong width go to ``ragged``."""
    width = len(columns)
    frame = lines.with_row_index(ROW, offset=first_row).with_columns(
        pl.col(ROW).cast(pl.Int64), fields.alias("__fields")
    )
    fits = pl.col("__fields").list.len() == width
    text = frame.filter(fits).select(
        ROW, *(pl.col("__fields").list.get(i).str.strip_chars().alias(name) for i, name in enumerate(columns))
    )
    text = text.with_columns(pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in columns)
    found = pl.col("__fields").list.len().cast(pl.String)
    reason = (
        pl.when(pl.col(LINE) == "")
        .then(pl.lit("empty line"))
        .otherwise(pl.lit(f"expected {width} fields, found ") + found)
    )
    ragged = frame.filter(~fits).select(
        pl.col(ROW).alias("row_number"),
        pl.lit(WHOLE_ROW).alias("field"),
        reason.alias("reason"),
        pl.struct(pl.col(LINE).alias("line")).struct.json_encode().alias("raw"),
    )
    return SplitLines(text=text, ragged=ragged.cast(QUARANTINE_SCHEMA))  # type: ignore[arg-type]


def require_digits(check: RowValidator, column: str, reason: str = "not a whole number") -> None:
    """Quarantine rows whose ``column`` is missing or not made of digits only."""
    check.require(column)
    value = pl.col(column)
    check.check(value.is_not_null() & ~value.str.contains(r"^\d+$"), column, reason)


def strip_zeros(column: str) -> pl.Expr:
    """Drop the leading zeros of a digit string (``"007"`` -> ``"7"``, ``"0"`` stays)."""
    return pl.col(column).str.replace(r"^0+(\d)", "${1}")


class CdnowImporter(Importer):
    """Purchases of the CDNOW master (or sample) file."""

    format: ClassVar[str] = "cdnow"
    summary: ClassVar[str] = "CDNOW purchase log (whitespace-separated text, optionally gzipped)"

    def parse(self, progress: Progress = NullProgress()) -> ParsedBatch:  # noqa: B008
        progress.stage("read", None)
        split = self._read()
        progress.stage("validate", None)
        rows, quarantine = _validate(split.text)
        rows = rows.join(_order_keys(split.text), on=ROW, how="left", maintain_order="left")
        return ParsedBatch(
            source=SOURCE,
            rows_read=split.rows_read,
            primary="order_lines",
            quarantine=pl.concat([split.ragged, quarantine]).sort("row_number"),
            members=_members(rows),
            products=pl.DataFrame({"product_key": [PRODUCT_KEY], "title": ["CD"]}),
            orders=_orders(rows),
            order_lines=_lines(rows),
        )

    def _read(self) -> SplitLines:
        lines = read_lines(self.path)
        header = lines[LINE].head(1).to_list()
        names = header[0].split() if header else []
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ImportFormatError(
                f"{self.path.name} lacks the column(s): {', '.join(missing)} (the first line must be the header)"
            )
        split = split_fields(lines.slice(1), names, pl.col(LINE).str.extract_all(r"\S+"), first_row=1)
        split.text = split.text.select(ROW, *COLUMNS)
        return split


def _validate(text: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    check = RowValidator(text)
    require_digits(check, "customer_id", "customer id is not a whole number")
    date = pl.col("date")
    check.require("date")
    check.check(date.is_not_null() & ~date.str.contains(r"^\d{8}$"), "date", "not a valid timestamp (%Y%m%d)")
    check.timestamp("date", "%Y%m%d")
    cds = check.integer("number_of_cds")
    dollars = check.number("dollar_value")
    check.check(cds < 0, "number_of_cds", "negative number of CDs")
    check.check(dollars < 0, "dollar_value", "negative dollar value")
    return check.split()


def _order_keys(text: pl.DataFrame) -> pl.DataFrame:
    """Key every row by customer, day and its position among that customer's rows of the day."""
    customer = strip_zeros("customer_id")
    ordinal = pl.int_range(1, pl.len() + 1).over(customer, "date")
    key = pl.concat_str(pl.lit(SOURCE), customer, pl.col("date"), ordinal.cast(pl.String), separator=":")
    return text.select(ROW, key.alias("order_key"))


def _members(rows: pl.DataFrame) -> pl.DataFrame:
    return (
        rows.group_by(strip_zeros("customer_id").alias("source_id"), maintain_order=True)
        .agg(pl.col("date").min().alias("signup_at"))
        .with_columns(pl.lit("online").alias("channel"))
    )


def _orders(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        "order_key",
        strip_zeros("customer_id").alias("member_source_id"),
        pl.col("date").alias("ordered_at"),
        pl.lit("completed").alias("status"),
        pl.lit("online").alias("channel"),
        pl.col("dollar_value").alias("amount"),
        pl.lit(0.0).alias("discount"),
    )


def _lines(rows: pl.DataFrame) -> pl.DataFrame:
    cds, dollars = pl.col("number_of_cds"), pl.col("dollar_value")
    return rows.select(
        "order_key",
        pl.lit(1, dtype=pl.Int32).alias("line_no"),
        pl.lit(PRODUCT_KEY).alias("product_key"),
        cds.alias("quantity"),
        pl.when(cds > 0).then(dollars / cds).otherwise(0.0).alias("unit_price"),
        dollars.alias("amount"),
        pl.lit(0.0).alias("discount"),
        pl.lit(False).alias("returned"),
        pl.col(ROW).alias("row_number"),
    )
