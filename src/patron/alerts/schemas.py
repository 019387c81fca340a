"""Outward types of the alerts domain.

A rule is flat: ``name``, ``metric``, ``kind`` and the fields of its kind.

============ ====================================================================
kind         fields (defaults)
============ ====================================================================
threshold    ``op``, ``value``
pct_change   ``op``, ``percent``, ``compare_to`` (``previous_day``)
anomaly      ``weeks`` (8), ``min_weeks`` (4), ``z_threshold`` (3.5),
             ``direction`` (``both``), ``mad_from`` (``all_weekdays``),
             ``skip_festivals`` (false)
============ ====================================================================

A field of another kind is refused rather than ignored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from patron.alerts.detection import Baseline, Direction, MadFrom, Op
from patron.alerts.series import Metric

__all__ = [
    "AlertPage",
    "AlertRead",
    "AlertRuleCreate",
    "AlertRuleCreated",
    "AlertRuleRead",
    "AlertRuleUpdate",
    "DeliveryStatus",
    "Kind",
    "check_webhook_url",
]

Kind = Literal["threshold", "pct_change", "anomaly"]
DeliveryStatus = Literal["none", "pending", "delivered", "failed"]
RuleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)]


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive date-times; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "threshold": ("op", "value"),
    "pct_change": ("op", "percent", "compare_to"),
    "anomaly": ("weeks", "min_weeks", "z_threshold", "direction", "mad_from", "skip_festivals"),
}
_DEFAULTS: dict[str, Any] = {
    "compare_to": "previous_day",
    "weeks": 8,
    "min_weeks": 4,
    "z_threshold": 3.5,
    "direction": "both",
    "mad_from": "all_weekdays",
    "skip_festivals": False,
}


def check_webhook_url(url: str) -> str:
    """Accept absolute http(s) URLs with a host; refuse every other scheme."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"the webhook URL must use http or https, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise ValueError("the webhook URL needs a host and no spaces")
    try:
        port = httpx2.URL(url).port  # the parser that posts it: IDNA host names, characters, port syntax
    except httpx2.InvalidURL as exc:
        raise ValueError(f"the webhook URL cannot be posted to: {exc}") from None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"the webhook URL's port must be 1 to 65535, not {port}")
    return url


class AlertRuleCreate(BaseModel):
    """A new rule; the kind's own fields are required or defaulted, the others refused."""

    model_config = ConfigDict(validate_default=True, extra="forbid")

    name: RuleName
    metric: Metric
    kind: Kind
    op: Op | None = None
    value: FiniteFloat | None = None
    percent: FiniteFloat | None = None
    compare_to: Baseline | None = None
    weeks: Annotated[int, Field(ge=2, le=52)] | None = None
    min_weeks: Annotated[int, Field(ge=2, le=52)] | None = None
    z_threshold: Annotated[float, Field(gt=0, le=100)] | None = None
    direction: Direction | None = None
    mad_from: MadFrom | None = None
    skip_festivals: bool | None = None
    enabled: bool = True
    webhook_url: WebhookUrl | None = None

    @field_validator(
        "op",
        "value",
        "percent",
        "compare_to",
        "weeks",
        "min_weeks",
        "z_threshold",
        "direction",
        "mad_from",
        "skip_festivals",
    )
    @classmethod
    def _fits_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind, name = info.data.get("kind"), info.field_name
        if kind is None or name is None:  # the kind itself is invalid and reported on its own
            return value
        if name not in KIND_FIELDS[kind]:
            if value is not None and not (name == "skip_festivals" and value is False):
                raise ValueError(f"{name} does not apply to {kind} rules")
            return None
        if value is None:
            if name not in _DEFAULTS:
                raise ValueError(f"a {kind} rule needs {name}")
            value = _DEFAULTS[name]
        weeks = info.data.get("weeks")
        if name == "min_weeks" and weeks is not None and value > weeks:
            raise ValueError(f"min_weeks ({value}) cannot exceed weeks ({weeks})")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        return None if url is None or url == "" else check_webhook_url(url)


class AlertRuleUpdate(BaseModel):
    """A partial change; fields left out keep their value, ``webhook_url: null`` removes the webhook.

    Changing ``kind`` drops the old kind's fields; the result is checked like a new rule.
    """

    model_config = ConfigDict(extra="forbid")

    name: RuleName | None = None
    metric: Metric | None = None
    kind: Kind | None = None
    op: Op | None = None
    value: FiniteFloat | None = None
    percent: FiniteFloat | None = None
    compare_to: Baseline | None = None
    weeks: Annotated[int, Field(ge=2, le=52)] | None = None
    min_weeks: Annotated[int, Field(ge=2, le=52)] | None = None
    z_threshold: Annotated[float, Field(gt=0, le=100)] | None = None
    direction: Direction | None = None
    mad_from: MadFrom | None = None
    skip_festivals: bool | None = None
    enabled: bool | None = None
    webhook_url: WebhookUrl | None = None

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        return None if url is None or url == "" else check_webhook_url(url)


class AlertRuleRead(BaseModel):
    """A rule as stored (never its webhook secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    metric: Metric
    kind: Kind
    op: Op | None
    value: float | None
    percent: float | None
    compare_to: Baseline | None
    weeks: int | None
    min_weeks: int | None
    z_threshold: float | None
    direction: Direction | None
    mad_from: MadFrom | None
    skip_festivals: bool
    enabled: bool
    webhook_url: str | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AlertRuleCreated(AlertRuleRead):
    """Returned once, at creation: the only time the webhook signing secret is shown."""

    webhook_secret: str


class AlertRead(BaseModel):
    """A fired alert and the state of its webhook delivery."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int | None
    rule_name: str
    kind: Kind
    metric: Metric
    day: date
    value: float
    expected: float | None
    score: float | None
    message: str
    created_at: UtcDatetime
    delivery_status: DeliveryStatus
    delivery_attempts: int
    delivery_error: str | None
    delivered_at: UtcDatetime | None


class AlertPage(BaseModel):
    items: list[AlertRead]
    total: int
    page: int
    page_size: int
