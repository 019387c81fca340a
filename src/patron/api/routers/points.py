"""API routes: loyalty points."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["loyalty points"])
