"""API routes: loyalty program."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["loyalty program"])
