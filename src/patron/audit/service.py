"""Recording and reading the audit log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from patron.audit.chain import append
from patron.audit.models import AuditEntry
from patron.db.base import utcnow
from patron.db.engine import OperationalStore

__all__ = ["AuditPage", "AuditRead", "list_audit", "record"]


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: Any
    actor: str
    action: str
    target: str | None
    source_ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditRead]
    total: int
    page: int
    page_size: int


def record(
    store: OperationalStore,
    actor: str,
    action: str,
    target: str | None = None,
    *,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry: who did what to which thing, from where.

    ``details`` must never carry personal data; callers pass keys and counts.
    """
    entry = AuditEntry(actor=actor, action=action, target=target, source_ip=source_ip, details=details or {})
    entry.at = utcnow()
    with store.session() as sess:
        append(sess, store.audit_key(), entry)


def list_audit(store: OperationalStore, page: int = 1, page_size: int = 50, action: str | None = None) -> AuditPage:
    with store.session() as sess:
        query = select(AuditEntry)
        count = select(func.count()).select_from(AuditEntry)
        if action:
            query, count = query.where(AuditEntry.action == action), count.where(AuditEntry.action == action)
        rows = sess.scalars(query.order_by(AuditEntry.id.desc()).offset((page - 1) * page_size).limit(page_size))
        items = [AuditRead.model_validate(r) for r in rows]
        return AuditPage(items=items, total=sess.scalar(count) or 0, page=page, page_size=page_size)
