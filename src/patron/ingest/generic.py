"""Any CSV (optionally gzipped) or Parquet file, described by a mapping.

The mapping (see docs/import.md) names the entity the file holds and which
file column feeds which Patron field. Choices:

- keys are prefixed with the mapping's source (``<source>:<id>``); member ids
  stay as they are and are swapped for opaque member keys by the service;
- personal fields (name, email, phone, address, birthday) go to the vault only
  and are redacted in the quarantine's raw rows; unmapped columns are never read
  into Patron, not even into the quarantine;
- quarantined rows name the FILE's column, so the user can find the value;
- a key repeated within the file is imported once (its first row); later rows
  are quarantined as duplicates;
- order lines that carry ``ordered_at`` also produce their orders (amount = sum
  of the line amounts); other entities never create rows of another entity;
- inventory rows are stock counts keyed by product and count time: a new count
  of a product is a new row, an identical re-import a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

import polars as pl

from patron.ingest.contract import QUARANTINE_SCHEMA, Importer, ParsedBatch
from patron.ingest.mapping import FIELDS, REQUIRED, MappingSpec, load_mapping, parse_mapping
from patron.ingest.validation import ROW, RowValidator, read_text_table
from patron.members.vault import PERSONAL_FIELDS
from patron.progress import NullProgress, Progress

__all__ = ["FIELDS", "REDACTED", "GenericImporter", "MappingSpec", "iso_datetime", "load_mapping", "parse_mapping"]

REDACTED = "[redacted]"
STATUSES = ("completed", "cancelled")
_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "members": ("member_id",),
    "products": ("product_id",),
    "orders": ("order_id",),
    "events": ("event_id",),
    "inventory": ("product_id", "updated_at"),
}
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_ISO_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_TRUE, _FALSE = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0")
_INT32_MAX = 2**31 - 1
_MAX_LEAD_TIME_DAYS = 365


def iso_datetime(text: pl.Expr) -> pl.Expr:
    """Parse ISO 8601 text; values with an offset are converted to UTC, all results are naive."""
    naive = [text.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE]
    aware = [_utc_naive(text.str.to_datetime(f, strict=False, time_unit="us")) for f in _ISO_OFFSET]
    return pl.coalesce(*naive, *aware)


def _utc_naive(aware: pl.Expr) -> pl.Expr:
    return aware.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us")


class _Validator(RowValidator):
    """RowValidator with the value kinds a mapping can ask for."""

    def timestamp(self, column: str, fmt: str | None, *, required: bool = True) -> pl.Expr:
        if fmt is not None and fmt != "iso" and not re.search(r"%[:#]?z", fmt):
            return super().timestamp(column, fmt, required=required)  # unix, or a layout without offset
        text = pl.col(column)
        parsed = iso_datetime(text) if fmt in ("iso", None) else _utc_naive(text.str.to_datetime(fmt, strict=False))
        self._text_check(column, parsed.is_not_null(), f"not a valid timestamp ({fmt or 'iso'})", required)
        self._parsed[column] = parsed
        return parsed

    def date(self, column: str, fmt: str, *, required: bool) -> None:
        parsed = pl.col(column).str.to_date(fmt, strict=False)
        self._text_check(column, parsed.is_not_null(), f"not a valid date ({fmt})", required)
        self._parsed[column] = parsed.dt.to_string("%Y-%m-%d")

    def boolean(self, column: str, *, required: bool) -> None:
        words = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
        parsed = pl.col(column).str.to_lowercase().replace_strict(words, default=None, return_dtype=pl.Boolean)
        self._text_check(column, parsed.is_not_null(), "not a boolean (true/false, yes/no, 1/0)", required)
        self._parsed[column] = parsed

    def choice(self, column: str, allowed: tuple[str, ...], reason: str, *, required: bool) -> None:
        lowered = pl.col(column).str.to_lowercase()
        self._text_check(column, lowered.is_in(list(allowed)), reason, required)
        self._parsed[column] = lowered

    def text(self, column: str, *, required: bool, lower: bool = False) -> None:
        if required:
            self.require(column)
        if lower:
            self._parsed[column] = pl.col(column).str.to_lowercase()


FieldCheck = Callable[[_Validator, str, str, MappingSpec, bool], None]


def _check_text(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    check.text(column, required=required, lower=field == "event_type")
    if field == "email":
        value = pl.col(column)
        check.check(value.is_not_null() & ~value.str.contains("@", literal=True), column, "e-mail without '@'")


def _check_timestamp(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    check.timestamp(column, spec.timestamp_format, required=required)


def _check_date(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    check.date(column, spec.date_format, required=required)


def _check_amount(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.number(column, required=required)
    check.check(value < 0, column, f"negative {field.replace('_', ' ')}")


def _check_quantity(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.integer(column, required=required)
    check.check(value < 0, column, "negative quantity")


def _check_line_no(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.integer(column, required=True)
    check.check((value < 1) | (value > _INT32_MAX), column, "line number outside 1..2147483647")


def _check_stock(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.integer(column, required=required)
    check.check(value < 0, column, f"negative {field.replace('_', ' ')}")


def _check_lead_time(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.integer(column, required=required)
    check.check((value < 0) | (value > _MAX_LEAD_TIME_DAYS), column, f"lead time outside 0..{_MAX_LEAD_TIME_DAYS} days")


def _check_birth_year(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    value = check.integer(column, required=required)
    latest = date.today().year
    check.check((value < 1900) | (value > latest), column, f"birth year outside 1900..{latest}")


def _check_status(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    check.choice(column, STATUSES, "unknown status (use completed or cancelled)", required=required)


def _check_boolean(check: _Validator, field: str, column: str, spec: MappingSpec, required: bool) -> None:
    check.boolean(column, required=required)


_CHECKS: dict[str, FieldCheck] = {
    "signup_at": _check_timestamp,
    "ordered_at": _check_timestamp,
    "occurred_at": _check_timestamp,
    "updated_at": _check_timestamp,
    "birthday": _check_date,
    "price": _check_amount,
    "unit_price": _check_amount,
    "amount": _check_amount,
    "discount": _check_amount,
    "quantity": _check_quantity,
    "on_hand": _check_stock,
    "safety_stock": _check_stock,
    "lead_time_days": _check_lead_time,
    "line_no": _check_line_no,
    "birth_year": _check_birth_year,
    "status": _check_status,
    "returned": _check_boolean,
}


def _value_required(spec: MappingSpec) -> set[str]:
    """Fields whose value may not be empty in any row."""
    needed = set(REQUIRED[spec.entity]) | {"line_no", "ordered_at", "event_id"}
    if spec.entity == "order_lines":
        needed.add("unit_price" if spec.has("unit_price") else "amount")
    return needed & set(spec.columns)


def _validate(spec: MappingSpec, text: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check every mapped column; return accepted rows (named by Patron field) and the quarantine."""
    check = _Validator(text)
    needed = _value_required(spec)
    for field, column in spec.columns.items():
        _CHECKS.get(field, _check_text)(check, field, column, spec, field in needed)
    good, quarantine = check.split()
    return good.select(ROW, *(pl.col(column).alias(field) for field, column in spec.columns.items())), quarantine


def _first_per_key(spec: MappingSpec, rows: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first row of every key; quarantine the rows that repeat it."""
    repeated = ~pl.struct(keys).is_first_distinct()
    names = ", ".join(spec.columns[k] for k in keys)
    dupes = rows.filter(repeated).select(
        pl.col(ROW).alias("row_number"),
        pl.lit(spec.columns[keys[-1]]).alias("field"),
        pl.lit(f"duplicate key: an earlier row of this file has the same {names}").alias("reason"),
        pl.lit("").alias("raw"),
    )
    return rows.filter(~repeated), dupes.cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]


def _with_raw(spec: MappingSpec, quarantine: pl.DataFrame, text: pl.DataFrame) -> pl.DataFrame:
    """Attach each quarantined row's mapped columns as JSON, personal values redacted."""
    personal = [column for field, column in spec.columns.items() if field in PERSONAL_FIELDS]
    hide = (pl.when(pl.col(c).is_null()).then(None).otherwise(pl.lit(REDACTED)).alias(c) for c in personal)
    shown = [c for c in text.columns if c != ROW]
    raw = text.with_columns(hide).select(
        pl.col(ROW).alias("row_number"), pl.struct(shown).struct.json_encode().alias("raw")
    )
    joined = quarantine.drop("raw").join(raw, on="row_number", how="left")
    return joined.sort("row_number").select(list(QUARANTINE_SCHEMA))


def _column(spec: MappingSpec, field: str, default: Any, dtype: pl.DataType) -> pl.Expr:
    """Return the accepted value of a field, or ``default`` where it is empty or not mapped."""
    return (pl.col(field).fill_null(default) if spec.has(field) else pl.lit(default)).cast(dtype).alias(field)


def _key(spec: MappingSpec, field: str) -> pl.Expr:
    return pl.lit(f"{spec.source}:") + pl.col(field)


def _mapped(spec: MappingSpec, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if spec.has(f)]


def _members(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    extra = _mapped(spec, (*PERSONAL_FIELDS, "signup_at", "gender", "region", "city", "channel"))
    year = [pl.col("birth_year").cast(pl.Int32)] if spec.has("birth_year") else []
    return {"members": rows.select(pl.col("member_id").alias("source_id"), *extra, *year)}


def _products(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    extra = _mapped(spec, ("title", "category", "brand", "price"))
    return {"products": rows.select(_key(spec, "product_id").alias("product_key"), *extra)}


def _order_header(spec: MappingSpec) -> list[pl.Expr]:
    member = [pl.col("member_id").alias("member_source_id")] if spec.has("member_id") else []
    channel = [pl.col("channel")] if spec.has("channel") else []
    return [*member, pl.col("ordered_at"), _column(spec, "status", "completed", pl.String()), *channel]


def _orders(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    frame = rows.select(
        _key(spec, "order_id").alias("order_key"),
        *_order_header(spec),
        "amount",
        _column(spec, "discount", 0.0, pl.Float64()),
    )
    return {"orders": frame}


def _line_amounts(spec: MappingSpec) -> tuple[pl.Expr, pl.Expr]:
    """Return unit price and amount, each derived from the other when not mapped."""
    quantity, price, amount = pl.col("quantity"), pl.col("unit_price"), pl.col("amount")
    if not spec.has("unit_price"):
        return pl.when(quantity > 0).then(amount / quantity).otherwise(0.0), amount
    computed = quantity * price
    return price, amount.fill_null(computed) if spec.has("amount") else computed


def _order_lines(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    unit_price, amount = _line_amounts(spec)
    product = pl.lit(None, dtype=pl.String)
    lines = rows.with_columns(
        _key(spec, "order_id").alias("order_key"),
        pl.col("line_no").cast(pl.Int32),
        (_key(spec, "product_id") if spec.has("product_id") else product).alias("product_key"),
        unit_price.cast(pl.Float64).alias("unit_price"),
        amount.cast(pl.Float64).alias("amount"),
        _column(spec, "discount", 0.0, pl.Float64()),
        _column(spec, "returned", False, pl.Boolean()),
    )
    columns = ["order_key", "line_no", "product_key", "quantity", "unit_price", "amount", "discount", "returned"]
    frames = {"order_lines": lines.select(*columns, pl.col(ROW).alias("row_number"))}
    if spec.has("ordered_at"):
        frames["orders"] = _orders_of_lines(spec, lines)
    return frames


def _orders_of_lines(spec: MappingSpec, lines: pl.DataFrame) -> pl.DataFrame:
    """One order per order key: header fields from its lines, amount the sum of the line amounts."""
    member = [pl.col("member_id").drop_nulls().first().alias("member_source_id")] if spec.has("member_id") else []
    channel = [pl.col("channel").drop_nulls().first()] if spec.has("channel") else []
    return lines.group_by("order_key", maintain_order=True).agg(
        *member,
        pl.col("ordered_at").min(),
        _column(spec, "status", "completed", pl.String()).first(),
        *channel,
        pl.col("amount").sum(),
        pl.col("discount").sum(),
    )


def _events(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    key = _key(spec, "event_id") if spec.has("event_id") else pl.col("event_key")
    member = [pl.col("member_id").alias("member_source_id")] if spec.has("member_id") else []
    product = [_key(spec, "product_id").alias("product_key")] if spec.has("product_id") else []
    extra = _mapped(spec, ("session_id", "category", "channel"))
    frame = rows.select(
        key.alias("event_key"), *member, *product, *extra, "event_type", "occurred_at", pl.col(ROW).alias("row_number")
    )
    return {"events": frame}


def _inventory(spec: MappingSpec, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    frame = rows.select(
        _key(spec, "product_id").alias("product_key"),
        "updated_at",
        pl.col("on_hand").cast(pl.Int64),
        pl.col("lead_time_days").cast(pl.Int32),
        _column(spec, "safety_stock", 0, pl.Int64()),
        pl.col(ROW).alias("row_number"),
    )
    return {"inventory": frame}


def _positions(spec: MappingSpec, text: pl.DataFrame) -> pl.DataFrame:
    """Derive keys over every row in file order, so they survive fixing a bad row."""
    if spec.entity == "order_lines" and not spec.has("line_no"):
        number = pl.int_range(1, pl.len() + 1).over(pl.col(spec.columns["order_id"]))
        return text.select(ROW, number.alias("line_no"))
    if spec.entity == "events" and not spec.has("event_id"):
        return text.select(ROW, _default_event_key(spec).alias("event_key"))
    return text.select(ROW)


def _default_event_key(spec: MappingSpec) -> pl.Expr:
    """``<source>:<member>:<product>:<event_type>:<occurred_at>:<n-th identical row>``."""
    fields = ("member_id", "product_id", "event_type", "occurred_at")
    parts = [pl.col(spec.columns[f]).fill_null("") if spec.has(f) else pl.lit("") for f in fields]
    parts[2] = parts[2].str.to_lowercase()
    base = pl.concat_str(pl.lit(spec.source), *parts, separator=":")
    return pl.concat_str(base, pl.int_range(1, pl.len() + 1).over(base).cast(pl.String), separator=":")


_BUILDERS: dict[str, Callable[[MappingSpec, pl.DataFrame], dict[str, pl.DataFrame]]] = {
    "members": _members,
    "products": _products,
    "orders": _orders,
    "order_lines": _order_lines,
    "events": _events,
    "inventory": _inventory,
}


def _unique_keys(spec: MappingSpec) -> list[str]:
    if spec.entity == "order_lines":
        return ["order_id", "line_no"] if spec.has("line_no") else []
    keys = _KEY_FIELDS[spec.entity]
    return list(keys) if all(spec.has(k) for k in keys) else []


class GenericImporter(Importer):
    """A CSV or Parquet file of one entity, mapped column by column."""

    format: ClassVar[str] = "generic"
    summary: ClassVar[str] = "Any CSV (optionally gzipped) or Parquet file of one entity, with a mapping file"
    needs_mapping: ClassVar[bool] = True

    def parse(self, progress: Progress = NullProgress()) -> ParsedBatch:  # noqa: B008
        spec = parse_mapping(self.mapping)
        progress.stage("read", None)
        columns = list(dict.fromkeys(spec.columns.values()))
        text = read_text_table(self.path, columns=columns, separator=spec.delimiter).select(ROW, *columns)
        progress.stage("validate", None)
        rows, quarantine = _validate(spec, text)
        rows = rows.join(_positions(spec, text), on=ROW, how="left", maintain_order="left")
        keys = _unique_keys(spec)
        if keys:
            rows, dupes = _first_per_key(spec, rows, keys)
            quarantine = pl.concat([quarantine, dupes])
        frames = _BUILDERS[spec.entity](spec, rows)  # by entity name, as ParsedBatch names its frames
        return ParsedBatch(
            source=spec.source,
            rows_read=text.height,
            primary=spec.entity,
            quarantine=_with_raw(spec, quarantine, text),
            notes={"entity": spec.entity, "source": spec.source},
            **frames,
        )
