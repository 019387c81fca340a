"""Outward types of retention: the policy of each data category and what a run did."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Action", "CategoryResult", "Place", "PolicyRead", "RetentionReport"]

Action = Literal["delete", "anonymize", "keep"]
Place = Literal["operational", "warehouse"]


class PolicyRead(BaseModel):
    """One data category: where it lives, how long it is kept and what happens after."""

    category: str
    description: str
    place: Place
    action: Action
    days: int | None = Field(description="days kept; None for categories kept without a period")
    default_days: int | None
    cutoff: datetime | None = Field(description="what is older than this goes (at the time asked)")
    note: str = ""


class CategoryResult(BaseModel):
    """What a run did to one category (or would do, in a dry run)."""

    category: str
    action: Action
    days: int
    cutoff: datetime
    affected: int = Field(description="rows deleted, or members anonymized")
    error: str | None = None


class RetentionReport(BaseModel):
    """A retention run: per category, what went (or would go, in a dry run)."""

    dry_run: bool
    ran_at: datetime
    results: list[CategoryResult]

    @property
    def total(self) -> int:
        return sum(result.affected for result in self.results)

    @property
    def errors(self) -> dict[str, str]:
        return {result.category: result.error for result in self.results if result.error}
