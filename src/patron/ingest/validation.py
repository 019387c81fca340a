"""Column-wise validation that quarantines bad rows with field and reason.

All source columns are read as text; each check adds a failure mask. A row
that fails any check is quarantined under its first failure, so every
quarantined row names one field and one reason.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from patron.errors import ImportFormatError
from patron.ingest.contract import QUARANTINE_SCHEMA
from patron.ingest.source import count_columns

__all__ = ["MAX_VALUE_CHARS", "ROW", "RowValidator", "read_text_table", "table_error"]

ROW = "__row"
MAX_VALUE_CHARS = 65_536
_TOO_LONG = f"value longer than {MAX_VALUE_CHARS:,} characters"


def read_text_table(
    path: Path,
    *,
    columns: list[str] | None = None,
    has_header: bool = True,
    separator: str = ",",
) -> pl.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file with every column as text.

    Adds ``__row``: the 1-based data row number (row 1 is the first row after
    the header).
    """
    if not path.exists():
        raise ImportFormatError(f"file not found: {path.name}")
    if path.suffix != ".parquet" and has_header:
        count_columns(path, separator)
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.all().cast(pl.String))
        else:
            frame = pl.read_csv(
                path,
                infer_schema=False,
                has_header=has_header,
                new_columns=columns if not has_header else None,
                separator=separator,
                truncate_ragged_lines=False,
                encoding="utf8",
            )
    except pl.exceptions.PolarsError as exc:
        raise ImportFormatError(f"{path.name} cannot be read as a table: {table_error(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path.name} is not valid UTF-8: {exc}") from exc
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ImportFormatError(f"{path.name} lacks the column(s): {', '.join(missing)}")
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in frame.columns)
    frame = frame.with_columns(pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns)
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def table_error(exc: Exception) -> str:
    """What the parser's error means for the user, without its advice on parser options."""
    message = str(exc)
    if "more fields than defined" in message:
        return "a row has more fields than the header"
    if "utf-8" in message.lower():
        return "it is not valid UTF-8 text; convert it to UTF-8 (from GBK/GB18030 or Latin-1, for instance)"
    return message.split("\n", 1)[0]


class RowValidator:
    """Accumulates parsed columns and failure masks over a text frame.

    Every text column is checked first for a NUL character (which no store can keep) and for a value longer
    than ``MAX_VALUE_CHARS``.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self._checks: list[tuple[pl.Expr, str, str]] = []
        self._parsed: dict[str, pl.Expr] = {}
        for column, dtype in frame.schema.items():
            if column != ROW and dtype == pl.String:
                value = pl.col(column)
                self.check(value.str.contains("\x00", literal=True), column, "contains a NUL character")
                self.check(value.str.len_chars() > MAX_VALUE_CHARS, column, _TOO_LONG)

    def require(self, column: str) -> None:
        self._checks.append((pl.col(column).is_null(), column, "required value is missing"))

    def integer(self, column: str, *, required: bool = True) -> pl.Expr:
        parsed = pl.col(column).cast(pl.Float64, strict=False)
        whole = parsed.is_not_null() & (parsed == parsed.round(0))
        self._text_check(column, whole, "not a whole number", required)
        expr = parsed.cast(pl.Int64, strict=False)
        self._parsed[column] = expr
        return expr

    def number(self, column: str, *, required: bool = True) -> pl.Expr:
        parsed = pl.col(column).cast(pl.Float64, strict=False)
        finite = parsed.is_not_null() & parsed.is_finite()
        self._text_check(column, finite, "not a number", required)
        self._parsed[column] = parsed
        return parsed

    def timestamp(self, column: str, fmt: str | None, *, required: bool = True) -> pl.Expr:
        if fmt == "unix":
            seconds = pl.col(column).cast(pl.Int64, strict=False)
            parsed = pl.from_epoch(seconds, time_unit="s")
        else:
            parsed = pl.col(column).str.to_datetime(fmt, strict=False, time_unit="us")
        self._text_check(column, parsed.is_not_null(), f"not a valid timestamp{f' ({fmt})' if fmt else ''}", required)
        self._parsed[column] = parsed
        return parsed

    def check(self, failed: pl.Expr, column: str, reason: str) -> None:
        """A domain rule: rows where ``failed`` is true are quarantined."""
        self._checks.append((failed.fill_null(False), column, reason))

    def _text_check(self, column: str, ok: pl.Expr, reason: str, required: bool) -> None:
        if required:
            self.require(column)
        self._checks.append((pl.col(column).is_not_null() & ~ok.fill_null(False), column, reason))

    def split(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Return (accepted rows with parsed columns, quarantine frame)."""
        field = pl.lit(None, dtype=pl.String)
        reason = pl.lit(None, dtype=pl.String)
        for failed, column, why in reversed(self._checks):
            field = pl.when(failed).then(pl.lit(column)).otherwise(field)
            reason = pl.when(failed).then(pl.lit(why)).otherwise(reason)
        text_columns = [c for c in self.frame.columns if c != ROW]
        tagged = self.frame.with_columns(field.alias("__field"), reason.alias("__reason"))
        bad = tagged.filter(pl.col("__field").is_not_null())
        quarantine = bad.select(
            pl.col(ROW).alias("row_number"),
            pl.col("__field").alias("field"),
            pl.col("__reason").alias("reason"),
            pl.struct(text_columns).struct.json_encode().alias("raw"),
        ).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
        good = tagged.filter(pl.col("__field").is_null()).drop("__field", "__reason")
        good = good.with_columns(expr.alias(name) for name, expr in self._parsed.items())
        return good, quarantine
