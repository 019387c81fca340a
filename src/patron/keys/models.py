"""Tables of wrapped keys: one data key per member, and the system keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base, utcnow

__all__ = ["MemberDataKey", "SystemKey"]


class MemberDataKey(Base):
    """A member's random data key, wrapped by the master key named in ``master_key_id``.

    Deleting the row (erasure) leaves whatever ciphertext might remain of the
    member unreadable. Kept narrow and without a secondary index: every vault
    write rewrites its member's row (the entry's ``updated_at`` says when).
    """

    __tablename__ = "member_data_keys"

    member_key: Mapped[str] = mapped_column(
        String(32), ForeignKey("member_identities.member_key", ondelete="CASCADE"), primary_key=True
    )
    master_key_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class SystemKey(Base):
    """A key of the whole installation (blind indexes, audit chain, sealed secrets), wrapped by a master key.

    ``origin`` is ``random`` for keys made by this version, ``derived`` for the
    keys an older data directory derived from its master key, kept so that its
    indexes, chain and secrets still verify and open.
    """

    __tablename__ = "system_keys"

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
