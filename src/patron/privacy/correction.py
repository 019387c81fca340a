"""Correcting a member's personal fields in the vault (right to rectification)."""

from __future__ import annotations

from sqlalchemy import select

from patron.errors import NotFoundError, ValidationError
from patron.members.models import MemberIdentity
from patron.members.vault import PERSONAL_FIELDS
from patron.members.vault_store import read_personal, write_personal
from patron.privacy.schemas import Correction
from patron.runtime import Runtime

__all__ = ["correct_member"]


def correct_member(runtime: Runtime, member_key: str, correction: Correction) -> list[str]:
    """Set the corrected fields (the others stay) and return their names; values are never logged or audited."""
    changes = correction.changes()
    if not changes:
        raise ValidationError("a correction needs at least one field with its new value", field="correction")
    with runtime.store.session() as session:
        known = session.scalar(select(MemberIdentity.member_key).where(MemberIdentity.member_key == member_key))
    if known is None:
        raise NotFoundError(f"member {member_key} is not known (never imported, or erased)")
    current = read_personal(runtime.store, runtime.cipher, member_key) or dict.fromkeys(PERSONAL_FIELDS)
    write_personal(runtime.store, runtime.cipher, [(member_key, {**current, **changes})])
    return sorted(changes)
