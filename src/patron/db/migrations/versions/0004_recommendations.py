"""recommendation model versions, placements and feedback

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rec_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.CheckConstraint("kind IN ('impression', 'click', 'purchase')", name=op.f("ck_rec_events_kind")),
        sa.CheckConstraint("revenue >= 0", name=op.f("ck_rec_events_revenue")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_rec_events_idempotency_key")),
    )
    op.create_index(op.f("ix_rec_events_placement"), "rec_events", ["placement"], unique=False)
    op.create_table(
        "rec_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("weight IS NULL OR weight > 0", name=op.f("ck_rec_feedback_weight")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_feedback")),
    )
    op.create_index(op.f("ix_rec_feedback_member_key"), "rec_feedback", ["member_key"], unique=False)
    op.create_index(op.f("ix_rec_feedback_occurred_at"), "rec_feedback", ["occurred_at"], unique=False)
    op.create_table(
        "rec_model_versions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("directory", sa.String(length=1024), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('training', 'ready', 'failed', 'retired')", name=op.f("ck_rec_model_versions_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_model_versions")),
    )
    op.create_table(
        "rec_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('member', 'similar', 'bought_together', 'session')", name=op.f("ck_rec_placements_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_placements")),
        sa.UniqueConstraint("name", name=op.f("uq_rec_placements_name")),
    )
    op.create_table(
        "rec_placement_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('create', 'update', 'rollback')", name=op.f("ck_rec_placement_history_action")),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["rec_placements.id"],
            name=op.f("fk_rec_placement_history_placement_id_rec_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_placement_history")),
        sa.UniqueConstraint("placement_id", "revision", name=op.f("uq_rec_placement_history_placement_id")),
    )
    op.create_table(
        "rec_placement_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.CheckConstraint("share_bp >= 0 AND share_bp <= 10000", name=op.f("ck_rec_placement_variants_share_bp")),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["rec_placements.id"],
            name=op.f("fk_rec_placement_variants_placement_id_rec_placements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["rec_model_versions.id"],
            name=op.f("fk_rec_placement_variants_version_id_rec_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_placement_variants")),
        sa.UniqueConstraint("placement_id", "name", name=op.f("uq_rec_placement_variants_placement_id")),
    )


def downgrade() -> None:
    op.drop_table("rec_placement_variants")
    op.drop_table("rec_placement_history")
    op.drop_table("rec_placements")
    op.drop_table("rec_model_versions")
    op.drop_index(op.f("ix_rec_feedback_occurred_at"), table_name="rec_feedback")
    op.drop_index(op.f("ix_rec_feedback_member_key"), table_name="rec_feedback")
    op.drop_table("rec_feedback")
    op.drop_index(op.f("ix_rec_events_placement"), table_name="rec_events")
    op.drop_table("rec_events")
