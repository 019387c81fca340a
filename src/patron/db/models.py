"""Imports every domain's tables so that Base.metadata knows them all."""

from patron.alerts.models import Alert, AlertRule
from patron.analytics.models import BuildRun
from patron.audit.models import AuditChainHead, AuditEntry
from patron.auth.models import ApiKey, Operator, OperatorSession
from patron.consent.models import ConsentEvent, ConsentRevision, MemberConsent, ProcessingRestriction
from patron.db.idempotency import IdempotencyRecord
from patron.ingest.models import ImportRun, QuarantinedRow
from patron.keys.models import MemberDataKey, SystemKey
from patron.loyalty.ledger_models import (
    LedgerEntry,
    LedgerReversal,
    LedgerTransaction,
    LotAllocation,
    PointsLot,
    PointsWallet,
)
from patron.loyalty.program_models import (
    EarningRule,
    EventAward,
    EventRule,
    JobRun,
    JobSchedule,
    LoyaltyOrder,
    MemberTier,
    ProgramSettings,
    SpendRecord,
    Tier,
    TierChange,
)
from patron.members.models import MemberIdentity, VaultEntry
from patron.privacy.models import ErasureTombstone, PrivacyRequest
from patron.promotions.models import (
    Coupon,
    PromotionRedemption,
    PromotionTemplate,
    PromotionUsage,
    Reward,
    RewardExchange,
)
from patron.recs.registry_models import (
    RecEvent,
    RecFeedback,
    RecModelVersion,
    RecPlacement,
    RecPlacementHistory,
    RecPlacementVariant,
)
from patron.tags.models import TagDefinition

__all__ = [
    "Alert",
    "AlertRule",
    "ApiKey",
    "AuditChainHead",
    "AuditEntry",
    "BuildRun",
    "ConsentEvent",
    "ConsentRevision",
    "Coupon",
    "EarningRule",
    "ErasureTombstone",
    "EventAward",
    "EventRule",
    "IdempotencyRecord",
    "ImportRun",
    "JobRun",
    "JobSchedule",
    "LedgerEntry",
    "LedgerReversal",
    "LedgerTransaction",
    "LotAllocation",
    "LoyaltyOrder",
    "MemberConsent",
    "MemberDataKey",
    "MemberIdentity",
    "MemberTier",
    "Operator",
    "OperatorSession",
    "PointsLot",
    "PointsWallet",
    "PrivacyRequest",
    "ProcessingRestriction",
    "ProgramSettings",
    "PromotionRedemption",
    "PromotionTemplate",
    "PromotionUsage",
    "QuarantinedRow",
    "RecEvent",
    "RecFeedback",
    "RecModelVersion",
    "RecPlacement",
    "RecPlacementHistory",
    "RecPlacementVariant",
    "Reward",
    "RewardExchange",
    "SpendRecord",
    "SystemKey",
    "TagDefinition",
    "Tier",
    "TierChange",
    "VaultEntry",
]
