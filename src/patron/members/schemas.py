"""Outward types of the members domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["MemberPage", "MemberRead", "MemberView", "OrderRead", "PersonalRead"]


class MemberRead(BaseModel):
    """A member as listed: profile figures, no personal data."""

    member_key: str
    segment: str | None
    r_score: int | None
    f_score: int | None
    m_score: int | None
    recency_days: int
    frequency: int
    monetary: float
    first_order_at: datetime | None
    last_order_at: datetime | None
    region: str | None
    gender: str | None
    channel: str | None
    lifecycle: str | None = None
    p_alive: float | None = None
    expected_purchases_90d: float | None = None
    clv_12m: float | None = None
    churn_risk: float | None = None
    churn_reasons: list[str] = Field(
        default_factory=list, description="features raising the risk most, strongest first"
    )
    cluster: int | None = None
    top_category: str | None = None
    top_category_share: float | None = None
    price_band: str | None = None
    discount_sensitivity: str | None = None
    preferred_weekday: int | None = Field(default=None, description="0 = Monday")
    preferred_hour: int | None = None
    main_channel: str | None = None


class MemberPage(BaseModel):
    items: list[MemberRead]
    total: int
    page: int
    page_size: int


class OrderRead(BaseModel):
    order_key: str
    ordered_at: datetime
    status: str
    amount: float
    discount: float
    lines: int
    channel: str | None


class PersonalRead(BaseModel):
    """Decrypted personal fields; returned only to roles allowed to see them, masked for some (see ``masked``)."""

    source: str | None = None
    source_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    birthday: str | None = None
    masked: bool = Field(
        default=False,
        description="name, e-mail, phone, address and birthday are partly hidden (support without a reason)",
    )


class MemberView(BaseModel):
    """Member 360: profile, RFM, segment, recent orders, personal data if allowed."""

    profile: MemberRead
    as_of: str
    recent_orders: list[OrderRead]
    personal: PersonalRead | None
    tags: list[str] = Field(default_factory=list, description="rule tags the member carries in the current build")
