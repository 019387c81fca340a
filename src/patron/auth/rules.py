"""Roles and what each may do.

=================== ===== ======= ======== =======
permission          admin analyst marketer support
=================== ===== ======= ======== =======
members:read          x     x       x        x
members:personal      x                      x
segments:read         x     x       x        x
kpis:read             x     x       x        x
imports:read          x     x
builds:read           x     x
operators:manage      x
api_keys:manage       x
audit:read            x
alerts:read           x     x       x
alerts:manage         x     x
forecasts:read        x     x       x
tags:manage           x     x       x
recs:read             x     x       x        x
recs:manage           x     x
recs:track            x     x       x
loyalty:read          x     x       x        x
loyalty:write         x             x        x
loyalty:adjust        x                      x
loyalty:manage        x             x
consent:read          x             x        x
consent:write         x                      x
privacy:manage        x                      x
retention:manage      x
=================== ===== ======= ======== =======

An API key acts with its role, narrowed to its scopes.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["PERMISSIONS", "ROLES", "Permission", "Role", "allowed"]

Role = Literal["admin", "analyst", "marketer", "support"]
ROLES: tuple[Role, ...] = ("admin", "analyst", "marketer", "support")
Permission = Literal[
    "members:read",
    "members:personal",
    "segments:read",
    "kpis:read",
    "imports:read",
    "builds:read",
    "operators:manage",
    "api_keys:manage",
    "audit:read",
    "alerts:read",
    "alerts:manage",
    "forecasts:read",
    "tags:manage",
    "recs:read",
    "recs:manage",
    "recs:track",
    "loyalty:read",
    "loyalty:write",
    "loyalty:adjust",
    "loyalty:manage",
    "consent:read",
    "consent:write",
    "privacy:manage",
    "retention:manage",
]

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    "members:read": frozenset(ROLES),
    "members:personal": frozenset({"admin", "support"}),
    "segments:read": frozenset(ROLES),
    "kpis:read": frozenset(ROLES),
    "imports:read": frozenset({"admin", "analyst"}),
    "builds:read": frozenset({"admin", "analyst"}),
    "operators:manage": frozenset({"admin"}),
    "api_keys:manage": frozenset({"admin"}),
    "audit:read": frozenset({"admin"}),
    "alerts:read": frozenset({"admin", "analyst", "marketer"}),
    "alerts:manage": frozenset({"admin", "analyst"}),
    "forecasts:read": frozenset({"admin", "analyst", "marketer"}),
    "tags:manage": frozenset({"admin", "analyst", "marketer"}),
    "recs:read": frozenset(ROLES),
    "recs:manage": frozenset({"admin", "analyst"}),
    "recs:track": frozenset({"admin", "analyst", "marketer"}),
    "loyalty:read": frozenset(ROLES),
    "loyalty:write": frozenset({"admin", "marketer", "support"}),
    "loyalty:adjust": frozenset({"admin", "support"}),
    "loyalty:manage": frozenset({"admin", "marketer"}),
    "consent:read": frozenset({"admin", "marketer", "support"}),
    "consent:write": frozenset({"admin", "support"}),
    "privacy:manage": frozenset({"admin", "support"}),
    "retention:manage": frozenset({"admin"}),
}


def allowed(role: str, permission: Permission, scopes: frozenset[str] | None = None) -> bool:
    """Whether ``role`` (narrowed by API-key ``scopes`` if given) grants ``permission``."""
    if role not in PERMISSIONS[permission]:
        return False
    return scopes is None or permission in scopes
