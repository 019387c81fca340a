"""Everything Patron holds about one member, as one machine-readable JSON document (right of access).

Sections: ``identity`` (source customer ids), ``personal`` (the vault's
fields, decrypted), ``build`` (profile with RFM, CLV and churn figures, and
rule tags, from the current build), ``warehouse`` (the member's row, orders
and their lines, events), ``points`` (balance, transactions with their
entries, lots), ``loyalty`` (tier, tier history, orders seen for earning,
spend, event awards), ``promotions`` (coupons, redemptions, per-promotion use,
reward exchanges), ``consent`` (current states, history, restriction),
``recommendations`` (feedback, impressions, clicks and purchases) and
``privacy_requests``. A section Patron has nothing for is empty, never left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from patron.analytics.artefacts import reader_for
from patron.consent.models import ConsentEvent, MemberConsent, ProcessingRestriction
from patron.db.base import Base, utcnow
from patron.errors import NotFoundError, StoreError, WarehouseBusyError
from patron.loyalty.ledger_models import LedgerTransaction, PointsWallet
from patron.loyalty.ledger_posting import read_transactions
from patron.loyalty.ledger_reads import lots
from patron.loyalty.program_models import EventAward, LoyaltyOrder, MemberTier, SpendRecord, TierChange
from patron.members.models import MemberIdentity
from patron.members.vault_store import read_personal
from patron.privacy.models import PrivacyRequest
from patron.promotions.models import Coupon, PromotionRedemption, PromotionUsage, RewardExchange
from patron.recs.registry_models import RecEvent, RecFeedback
from patron.runtime import Runtime
from patron.tags.service import member_tags

__all__ = ["FORMAT", "SECTIONS", "export_counts", "member_export"]

FORMAT = "patron.member-export/1"
SECTIONS = (
    "identity",
    "personal",
    "build",
    "warehouse",
    "points",
    "loyalty",
    "promotions",
    "consent",
    "recommendations",
    "privacy_requests",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None  # sealed values are exported decrypted, in ``personal``
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def _rows(objects: Iterable[Base]) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        mapper = inspect(obj).mapper
        out.append({attr.key: _plain(getattr(obj, attr.key)) for attr in mapper.column_attrs})
    return out


def _where(session: Session, model: type[Base], column: Any, member_key: str) -> list[dict[str, Any]]:
    order = list(inspect(model).primary_key)
    return _rows(session.scalars(select(model).where(column == member_key).order_by(*order)))


def _points(session: Session, member_key: str) -> dict[str, Any]:
    wallet = session.get(PointsWallet, member_key)
    ids = list(
        session.scalars(
            select(LedgerTransaction.id)
            .where(LedgerTransaction.member_key == member_key)
            .order_by(LedgerTransaction.id)
        )
    )
    return {
        "wallet": _rows([wallet])[0] if wallet is not None else None,
        "transactions": [t.model_dump(mode="json") for t in read_transactions(session, ids)],
        "lots": [lot.model_dump(mode="json") for lot in lots(session, member_key)],
    }


def _operational(session: Session, member_key: str) -> dict[str, Any]:
    restriction = session.get(ProcessingRestriction, member_key)
    return {
        "identity": _where(session, MemberIdentity, MemberIdentity.member_key, member_key),
        "points": _points(session, member_key),
        "loyalty": {
            "tier": _where(session, MemberTier, MemberTier.member_key, member_key),
            "tier_changes": _where(session, TierChange, TierChange.member_key, member_key),
            "orders": _where(session, LoyaltyOrder, LoyaltyOrder.member_key, member_key),
            "spend": _where(session, SpendRecord, SpendRecord.member_key, member_key),
            "event_awards": _where(session, EventAward, EventAward.member_key, member_key),
        },
        "promotions": {
            "coupons": _where(session, Coupon, Coupon.member_key, member_key),
            "redemptions": _where(session, PromotionRedemption, PromotionRedemption.member_key, member_key),
            "usage": _where(session, PromotionUsage, PromotionUsage.member_key, member_key),
            "reward_exchanges": _where(session, RewardExchange, RewardExchange.member_key, member_key),
        },
        "consent": {
            "current": _where(session, MemberConsent, MemberConsent.member_key, member_key),
            "history": _where(session, ConsentEvent, ConsentEvent.member_key, member_key),
            "restriction": _rows([restriction])[0] if restriction is not None else None,
        },
        "recommendations": {
            "feedback": _where(session, RecFeedback, RecFeedback.member_key, member_key),
            "events": _where(session, RecEvent, RecEvent.unit_id, member_key),
        },
        "privacy_requests": _where(session, PrivacyRequest, PrivacyRequest.member_key, member_key),
    }


def _records(table: Any) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pyarrow().to_pylist()]


def _build(runtime: Runtime, member_key: str) -> dict[str, Any]:
    try:
        reader = reader_for(runtime.settings.artefact_dir)
    except NotFoundError:
        return {"id": None, "as_of": None, "profile": None, "tags": []}
    profiles = reader.table("profiles")
    found = _records(profiles.filter(profiles.member_key == member_key))
    return {
        "id": reader.build_id,
        "as_of": str(reader.manifest["as_of"]),
        "profile": found[0] if found else None,
        "tags": member_tags(runtime.store, reader, member_key) if found else [],
    }


def _warehouse(runtime: Runtime, member_key: str) -> dict[str, Any]:
    empty: dict[str, Any] = {"member": None, "orders": [], "order_lines": [], "events": []}
    try:
        warehouse = runtime.warehouse(read_only=True)
    except WarehouseBusyError:
        raise
    except StoreError:  # no warehouse yet: nothing was imported
        return empty
    with warehouse:
        present = set(warehouse.con.list_tables())
        out = dict(empty)
        if "members" in present:
            members = warehouse.table("members")
            rows = _records(members.filter(members.member_key == member_key))
            out["member"] = rows[0] if rows else None
        if "orders" in present:
            orders = warehouse.table("orders")
            out["orders"] = _records(orders.filter(orders.member_key == member_key).order_by("ordered_at"))
        keys = [o["order_key"] for o in out["orders"]]
        if keys and "order_lines" in present:
            lines = warehouse.table("order_lines")
            out["order_lines"] = _records(lines.filter(lines.order_key.isin(keys)).order_by(["order_key", "line_no"]))
        if "events" in present:
            events = warehouse.table("events")
            out["events"] = _records(events.filter(events.member_key == member_key).order_by("occurred_at"))
    return out


def member_export(runtime: Runtime, member_key: str) -> dict[str, Any]:
    """The export document of one member (see the module docstring for its sections)."""
    with runtime.store.session() as session:
        operational = _operational(session, member_key)
    personal = read_personal(runtime.store, runtime.cipher, member_key)
    return {
        "format": FORMAT,
        "generated_at": utcnow().isoformat(),
        "member_key": member_key,
        "identity": operational.pop("identity"),
        "personal": personal,
        "build": _build(runtime, member_key),
        "warehouse": _warehouse(runtime, member_key),
        **operational,
    }


def _count(value: Any) -> int:
    """Records in a section: a list counts its items, a flat object one, a nested object its parts."""
    if value is None:
        return 0
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict) and any(isinstance(v, list | dict) for v in value.values()):
        return sum(_count(v) for v in value.values() if v is None or isinstance(v, list | dict))
    return 1


def export_counts(document: dict[str, Any]) -> dict[str, int]:
    """Records per section of an export (what a request's outcome keeps: no values)."""
    return {name: _count(document.get(name)) for name in SECTIONS}
