"""alert rules and alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_METRICS = "('gmv', 'orders', 'aov', 'buyers', 'repurchase_rate', 'new_buyers', 'returning_buyers')"


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("op", sa.String(length=2), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("compare_to", sa.String(length=16), nullable=True),
        sa.Column("weeks", sa.Integer(), nullable=True),
        sa.Column("min_weeks", sa.Integer(), nullable=True),
        sa.Column("z_threshold", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("mad_from", sa.String(length=16), nullable=True),
        sa.Column("skip_festivals", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('threshold', 'pct_change', 'anomaly')", name=op.f("ck_alert_rules_kind")),
        sa.CheckConstraint(f"metric IN {_METRICS}", name=op.f("ck_alert_rules_metric")),
        sa.CheckConstraint("op IS NULL OR op IN ('<', '<=', '>', '>=')", name=op.f("ck_alert_rules_op")),
        sa.CheckConstraint(
            "compare_to IS NULL OR compare_to IN ('previous_day', 'same_weekday')",
            name=op.f("ck_alert_rules_compare_to"),
        ),
        sa.CheckConstraint(
            "direction IS NULL OR direction IN ('both', 'up', 'down')", name=op.f("ck_alert_rules_direction")
        ),
        sa.CheckConstraint(
            "mad_from IS NULL OR mad_from IN ('all_weekdays', 'same_weekday')", name=op.f("ck_alert_rules_mad_from")
        ),
        sa.CheckConstraint("weeks IS NULL OR (weeks >= 2 AND weeks <= 52)", name=op.f("ck_alert_rules_weeks")),
        sa.CheckConstraint(
            "min_weeks IS NULL OR (min_weeks >= 2 AND min_weeks <= weeks)", name=op.f("ck_alert_rules_min_weeks")
        ),
        sa.CheckConstraint("z_threshold IS NULL OR z_threshold > 0", name=op.f("ck_alert_rules_z_threshold")),
        sa.CheckConstraint(
            "kind <> 'threshold' OR (op IS NOT NULL AND value IS NOT NULL)",
            name=op.f("ck_alert_rules_threshold_fields"),
        ),
        sa.CheckConstraint(
            "kind <> 'pct_change' OR (op IS NOT NULL AND percent IS NOT NULL AND compare_to IS NOT NULL)",
            name=op.f("ck_alert_rules_pct_change_fields"),
        ),
        sa.CheckConstraint(
            "kind <> 'anomaly' OR (weeks IS NOT NULL AND min_weeks IS NOT NULL AND z_threshold IS NOT NULL"
            " AND direction IS NOT NULL AND mad_from IS NOT NULL)",
            name=op.f("ck_alert_rules_anomaly_fields"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("delivery_error", sa.String(length=512), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "delivery_status IN ('none', 'pending', 'delivered', 'failed')",
            name=op.f("ck_alerts_delivery_status"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alerts_rule_id_alert_rules"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("rule_id", "day", name=op.f("uq_alerts_rule_id")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_metric"), ["metric"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_metric"))
        batch_op.drop_index(batch_op.f("ix_alerts_day"))

    op.drop_table("alerts")
    op.drop_table("alert_rules")
