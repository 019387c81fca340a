"""The parameters of each promotion kind, validated with errors that name the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["PositiveMoney", "check_params"]

PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]


class _Fixed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney


class _Percent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    percent: Annotated[Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2)]
    cap: PositiveMoney | None = None


class _Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: PositiveMoney
    discount: PositiveMoney


class _Tiers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tiers: Annotated[list[_Tier], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _rising(self) -> _Tiers:
        for before, after in zip(self.tiers, self.tiers[1:], strict=False):
            if after.threshold <= before.threshold:
                raise ValueError("tier thresholds must rise strictly")
        return self


class _FreeShipping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_shipping: PositiveMoney | None = None


class _Gift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=100)] = 1


_PARAMS: dict[str, type[BaseModel]] = {
    "fixed": _Fixed,
    "percent": _Percent,
    "threshold_tiers": _Tiers,
    "free_shipping": _FreeShipping,
    "gift": _Gift,
}


def check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate ``params`` for ``kind``: normalised (money as text), or a ValueError naming the field."""
    from pydantic import ValidationError as PydanticError

    try:
        parsed = _PARAMS[kind].model_validate(params)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("params", *first["loc"]))
        raise ValueError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
    dumped: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True)
    return dumped
