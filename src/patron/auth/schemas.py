"""Outward types of the auth domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from patron.auth.passwords import password_problem
from patron.auth.rules import Permission, Role

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "LoginRequest",
    "MfaConfirm",
    "MfaSetup",
    "OperatorCreate",
    "OperatorRead",
]


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="The current TOTP code, if enrolled")


class OperatorCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=1024)
    role: Role

    @field_validator("password")
    @classmethod
    def _strong(cls, password: str, info: ValidationInfo) -> str:
        problem = password_problem(password, [str(info.data.get("username") or "")])
        if problem:
            raise ValueError(problem)
        return password


class OperatorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role
    scopes: list[Permission] = Field(min_length=1)
    expires_at: datetime | None = None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    role: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """Returned once, at creation: the only time the secret is shown."""

    key: str


class MfaSetup(BaseModel):
    """A new TOTP secret: shown once, to be added to an authenticator app, then confirmed with a code."""

    secret: str
    otpauth_uri: str


class MfaConfirm(BaseModel):
    code: str = Field(pattern=r"^[0-9]{6}$", description="The code the authenticator app shows now")
