"""KPI alerts: threshold, percentage-change and anomaly rules on daily KPIs, delivered to webhooks.

Errors are those of :mod:`patron.errors`: ``ValidationError`` (a bad rule or
filter, naming the field), ``NotFoundError`` (no such rule, or no build yet)
and ``ConflictError`` (a rule name taken).

The names below load on first use: registering the tables
(:mod:`patron.alerts.models`) must not pull in the warehouse and HTTP stacks.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patron.alerts.delivery import SIGNATURE_HEADER, WebhookPolicy, sign
    from patron.alerts.schemas import (
        AlertPage,
        AlertRead,
        AlertRuleCreate,
        AlertRuleCreated,
        AlertRuleRead,
        AlertRuleUpdate,
    )
    from patron.alerts.series import METRICS, Metric
    from patron.alerts.service import (
        check_alerts,
        create_rule,
        delete_rule,
        get_rule,
        list_alerts,
        list_rules,
        update_rule,
    )

_HOMES = {
    "patron.alerts.delivery": ("SIGNATURE_HEADER", "WebhookPolicy", "sign"),
    "patron.alerts.schemas": (
        "AlertPage",
        "AlertRead",
        "AlertRuleCreate",
        "AlertRuleCreated",
        "AlertRuleRead",
        "AlertRuleUpdate",
    ),
    "patron.alerts.series": ("METRICS", "Metric"),
    "patron.alerts.service": (
        "check_alerts",
        "create_rule",
        "delete_rule",
        "get_rule",
        "list_alerts",
        "list_rules",
        "update_rule",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "METRICS",
    "SIGNATURE_HEADER",
    "AlertPage",
    "AlertRead",
    "AlertRuleCreate",
    "AlertRuleCreated",
    "AlertRuleRead",
    "AlertRuleUpdate",
    "Metric",
    "WebhookPolicy",
    "check_alerts",
    "create_rule",
    "delete_rule",
    "get_rule",
    "list_alerts",
    "list_rules",
    "sign",
    "update_rule",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module 'patron.alerts' has no attribute {name!r}")
    return getattr(import_module(_HOME_OF[name]), name)
