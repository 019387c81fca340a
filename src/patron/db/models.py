"""Imports every domain's tables so that Base.metadata knows them all."""

from patron.alerts.models import Alert, AlertRule
from patron.analytics.models import BuildRun
from patron.audit.models import AuditChainHead, AuditEntry
from patron.auth.models import ApiKey, Operator, OperatorSession
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.members.models import MemberIdentity, VaultEntry
from patron.tags.models import TagDefinition

__all__ = [
    "Alert",
    "AlertRule",
    "ApiKey",
    "AuditChainHead",
    "AuditEntry",
    "BuildRun",
    "ImportRun",
    "MemberIdentity",
    "Operator",
    "OperatorSession",
    "QuarantinedRow",
    "TagDefinition",
    "VaultEntry",
]
