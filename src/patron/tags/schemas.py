"""Outward types of rule tags."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TagCreate", "TagProblem", "TagRead", "TagUpdate", "TagValidation"]

TAG_NAME = r"^[\w\-. ]{1,64}$"  # letters (any script), digits, _ - . and spaces


class TagCreate(BaseModel):
    name: str = Field(pattern=TAG_NAME, description="unique; letters of any script, digits, _ - . and spaces")
    rule: str = Field(min_length=1, max_length=2000, description="a rule over profile fields (docs/tags.md)")
    description: str = Field(default="", max_length=500)


class TagUpdate(BaseModel):
    rule: str | None = Field(default=None, min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=500)


class TagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    rule: str
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    members: int | None = Field(default=None, description="members carrying the tag in the current build")


class TagProblem(BaseModel):
    position: int
    reason: str
    hint: str
    message: str


class TagValidation(BaseModel):
    valid: bool
    canonical: str | None
    problems: list[TagProblem]
