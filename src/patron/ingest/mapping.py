"""The mapping of a generic import: which entity a file holds and which file column feeds which field.

See docs/import.md; :mod:`patron.ingest.generic` reads files with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from patron.errors import ValidationError
from patron.ingest.contract import Entity
from patron.members.vault import PERSONAL_FIELDS

__all__ = ["FIELDS", "HEADER_FIELDS", "REQUIRED", "MappingSpec", "load_mapping", "parse_mapping"]

HEADER_FIELDS = ("member_id", "ordered_at", "status", "channel")

FIELDS: dict[str, tuple[str, ...]] = {
    "members": ("member_id", *PERSONAL_FIELDS, "signup_at", "gender", "birth_year", "region", "city", "channel"),
    "products": ("product_id", "title", "category", "brand", "price"),
    "orders": ("order_id", "member_id", "ordered_at", "status", "channel", "amount", "discount"),
    "order_lines": (
        "order_id",
        "line_no",
        "product_id",
        "quantity",
        "unit_price",
        "amount",
        "discount",
        "returned",
        *HEADER_FIELDS,
    ),
    "events": ("event_id", "member_id", "session_id", "product_id", "category", "event_type", "occurred_at", "channel"),
    "inventory": ("product_id", "updated_at", "on_hand", "lead_time_days", "safety_stock"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "members": ("member_id",),
    "products": ("product_id",),
    "orders": ("order_id", "ordered_at", "amount"),
    "order_lines": ("order_id", "quantity"),
    "events": ("event_type", "occurred_at"),
    "inventory": ("product_id", "updated_at", "on_hand", "lead_time_days"),
}

ColumnName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class MappingSpec(BaseModel):
    """A validated mapping: which entity a file holds and where each Patron field comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: Entity
    source: str = Field(default="generic", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    columns: dict[str, ColumnName]
    timestamp_format: str = "iso"
    date_format: str = "%Y-%m-%d"
    delimiter: str = Field(default=",", min_length=1, max_length=1)

    @field_validator("timestamp_format")
    @classmethod
    def _timestamp_format(cls, value: str) -> str:
        if value not in ("iso", "unix") and "%" not in value:
            raise ValueError("use 'iso', 'unix' or a strftime pattern such as '%Y-%m-%d %H:%M:%S'")
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        if "%" not in value:
            raise ValueError("use a strftime pattern such as '%Y-%m-%d'")
        return value

    def has(self, field: str) -> bool:
        return field in self.columns


def parse_mapping(raw: Mapping[str, Any] | None) -> MappingSpec:
    """Validate a mapping dict; errors name the offending key (``mapping.columns.email``)."""
    if raw is None:
        raise ValidationError("the generic format needs a mapping (--mapping FILE)", field="mapping")
    try:
        spec = MappingSpec.model_validate(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors)
        raise ValidationError(problems, field=_where(errors[0]["loc"])) from None
    _check_columns(spec)
    return spec


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(["mapping", *(str(part) for part in loc)])


def _check_columns(spec: MappingSpec) -> None:
    """Check the mapped fields against the entity: known, required present, no column used twice."""
    allowed = FIELDS[spec.entity]
    for field in spec.columns:
        if field not in allowed:
            _mapping_error(f"columns.{field}", f"'{field}' is not a field of {spec.entity}; use {', '.join(allowed)}")
    for field in REQUIRED[spec.entity]:
        if not spec.has(field):
            _mapping_error(f"columns.{field}", f"{spec.entity} need the field '{field}' mapped to a file column")
    seen: dict[str, str] = {}
    for field, column in spec.columns.items():
        if column in seen:
            _mapping_error(f"columns.{field}", f"column '{column}' is already mapped to '{seen[column]}'")
        seen[column] = field
    if spec.entity == "order_lines":
        _check_line_columns(spec)


def _check_line_columns(spec: MappingSpec) -> None:
    if not (spec.has("unit_price") or spec.has("amount")):
        _mapping_error("columns.unit_price", "order_lines need 'unit_price' or 'amount' mapped")
    for field in HEADER_FIELDS:
        if spec.has(field) and not spec.has("ordered_at"):
            _mapping_error(f"columns.{field}", f"the order header field '{field}' needs 'ordered_at' mapped too")


def _mapping_error(where: str, message: str) -> NoReturn:
    raise ValidationError(f"mapping.{where}: {message}", field=f"mapping.{where}")


def load_mapping(path: Path) -> dict[str, Any]:
    """Read a mapping from a .yaml/.yml or .json file and validate it."""
    if not path.is_file():
        raise ValidationError(f"mapping file not found: {path}", field="mapping")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ValidationError(f"mapping file {path.name} must end in .yaml, .yml or .json", field="mapping")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if suffix == ".json" else "YAML"
        raise ValidationError(f"mapping file {path.name} is not valid {kind}: {exc}", field="mapping") from None
    if not isinstance(data, dict):
        raise ValidationError(f"mapping file {path.name} must hold one object (entity, columns, ...)", field="mapping")
    parse_mapping(data)
    return data
