"""Authorization-walk entries of the consent routes."""

from __future__ import annotations

from tests.api.walk_types import Route

MATRIX: dict[tuple[str, str], Route] = {}
