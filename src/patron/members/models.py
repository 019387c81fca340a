"""Operational tables of the members domain: key mapping and the vault."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow
from patron.keys.models import MemberDataKey, SystemKey

# The key tables are re-exported here so that importing the members' tables registers them too.
__all__ = ["MemberDataKey", "MemberIdentity", "SystemKey", "VaultEntry"]


class MemberIdentity(Base):
    """Maps a source's customer id to the opaque member key.

    The warehouse only ever sees ``member_key``; removing this row (erasure)
    breaks the link between the person and their anonymous history.
    """

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    member_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VaultEntry(Base):
    """Encrypted personal fields of one member (AES-256-GCM, see members.vault).

    ``key_version`` 2: sealed under the member's data key (``member_data_keys``);
    1: sealed the older way, under the installation's secrets key.
    """

    __tablename__ = "member_vault"

    member_key: Mapped[str] = mapped_column(
        String(32), ForeignKey("member_identities.member_key", ondelete="CASCADE"), primary_key=True
    )
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[bytes | None] = mapped_column(LargeBinary)
    email: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone: Mapped[bytes | None] = mapped_column(LargeBinary)
    address: Mapped[bytes | None] = mapped_column(LargeBinary)
    birthday: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
