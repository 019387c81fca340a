"""consents and data-subject requests

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_PURPOSES = "('marketing_email', 'marketing_sms', 'marketing_push', 'personalization', 'analytics')"
_STATES = "('granted', 'denied', 'withdrawn')"


def _consent_tables() -> None:
    op.create_table(
        "member_consents",
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("evidence", sa.String(length=512), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(f"purpose IN {_PURPOSES}", name=op.f("ck_member_consents_purpose")),
        sa.CheckConstraint(f"state IN {_STATES}", name=op.f("ck_member_consents_state")),
        sa.PrimaryKeyConstraint("member_key", "purpose", name=op.f("pk_member_consents")),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("evidence", sa.String(length=512), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"purpose IN {_PURPOSES}", name=op.f("ck_consent_events_purpose")),
        sa.CheckConstraint(f"state IN {_STATES}", name=op.f("ck_consent_events_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index("ix_consent_events_member_key_id", "consent_events", ["member_key", "id"])
    op.create_table(
        "processing_restrictions",
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reason IN ('request', 'erasure')", name=op.f("ck_processing_restrictions_reason")),
        sa.PrimaryKeyConstraint("member_key", name=op.f("pk_processing_restrictions")),
    )
    op.create_table(
        "consent_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_consent_revision_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_revision")),
    )


def _privacy_tables() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.String(length=128), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('export', 'correction', 'restriction', 'erasure')", name=op.f("ck_privacy_requests_kind")
        ),
        sa.CheckConstraint(
            "status IN ('received', 'in_progress', 'completed', 'rejected')", name=op.f("ck_privacy_requests_status")
        ),
        sa.CheckConstraint("due_at > received_at", name=op.f("ck_privacy_requests_due_at")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index(op.f("ix_privacy_requests_member_key"), "privacy_requests", ["member_key"])
    op.create_index("ix_privacy_requests_status_due_at", "privacy_requests", ["status", "due_at"])
    op.create_table(
        "erasure_tombstones",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_erasure_tombstones")),
    )


def _append_only() -> None:
    """The consent history is append-only, as the ledger (migration 0005 made the PostgreSQL function)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events"
            " FOR EACH ROW EXECUTE FUNCTION patron_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER consent_events_no_{event.lower()} BEFORE {event} ON consent_events"
            " BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END"
        )


def upgrade() -> None:
    _consent_tables()
    _privacy_tables()
    _append_only()


def downgrade() -> None:
    for table in (
        "erasure_tombstones",
        "privacy_requests",
        "consent_revision",
        "processing_restrictions",
        "consent_events",
        "member_consents",
    ):
        op.drop_table(table)
