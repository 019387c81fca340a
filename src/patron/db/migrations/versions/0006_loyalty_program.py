"""earning rules and tiers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_earning_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("points_per_unit", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=True),
        sa.Column("match", sa.String(length=128), nullable=True),
        sa.Column("multiplier", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(length=8), nullable=True),
        sa.Column("max_points", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind <> 'base' OR points_per_unit > 0", name=op.f("ck_loyalty_earning_rules_base_fields")),
        sa.CheckConstraint(
            "kind <> 'cap' OR (period IS NOT NULL AND max_points >= 0)",
            name=op.f("ck_loyalty_earning_rules_cap_fields"),
        ),
        sa.CheckConstraint(
            "kind <> 'multiplier' OR (scope IS NOT NULL AND multiplier > 0)",
            name=op.f("ck_loyalty_earning_rules_multiplier_fields"),
        ),
        sa.CheckConstraint("kind IN ('base', 'multiplier', 'cap')", name=op.f("ck_loyalty_earning_rules_kind")),
        sa.CheckConstraint(
            "period IS NULL OR period IN ('day', 'week', 'month')", name=op.f("ck_loyalty_earning_rules_period")
        ),
        sa.CheckConstraint(
            "scope IS NULL OR scope IN ('category', 'brand', 'campaign', 'member_day')",
            name=op.f("ck_loyalty_earning_rules_scope"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_earning_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_loyalty_earning_rules_name")),
    )
    op.create_table(
        "loyalty_event_awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("period_key", sa.String(length=160), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_event_awards")),
        sa.UniqueConstraint("member_key", "event", "period_key", name=op.f("uq_loyalty_event_awards_member_key")),
    )
    op.create_table(
        "loyalty_event_rules",
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("birthday_window", sa.String(length=8), nullable=True),
        sa.Column("streak_days", sa.Integer(), nullable=True),
        sa.Column("streak_bonus", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "birthday_window IS NULL OR birthday_window IN ('month', 'day')",
            name=op.f("ck_loyalty_event_rules_birthday_window"),
        ),
        sa.CheckConstraint(
            "event IN ('sign_up', 'first_order', 'review', 'birthday', 'daily_check_in')",
            name=op.f("ck_loyalty_event_rules_event"),
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_loyalty_event_rules_points")),
        sa.PrimaryKeyConstraint("event", name=op.f("pk_loyalty_event_rules")),
    )
    op.create_table(
        "loyalty_job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=128), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("result", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_loyalty_job_runs_status")),
        sa.CheckConstraint("trigger IN ('schedule', 'manual')", name=op.f("ck_loyalty_job_runs_trigger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_job_runs")),
        sa.UniqueConstraint("name", "slot", name=op.f("uq_loyalty_job_runs_name")),
    )
    op.create_table(
        "loyalty_job_schedules",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_loyalty_job_schedules")),
    )
    op.create_table(
        "loyalty_member_tiers",
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("tier_code", sa.String(length=32), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("member_key", name=op.f("pk_loyalty_member_tiers")),
    )
    op.create_table(
        "loyalty_orders",
        sa.Column("order_key", sa.String(length=128), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spend", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("returned_spend", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("points_kept", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("earn_reference", sa.String(length=160), nullable=True),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('earned', 'partially_returned', 'returned')", name=op.f("ck_loyalty_orders_status")
        ),
        sa.PrimaryKeyConstraint("order_key", name=op.f("pk_loyalty_orders")),
    )
    op.create_index("ix_loyalty_orders_member_key", "loyalty_orders", ["member_key"], unique=False)
    op.create_table(
        "loyalty_program_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tier_basis", sa.String(length=8), nullable=False),
        sa.Column("tier_window_days", sa.Integer(), nullable=False),
        sa.Column("downgrade_policy", sa.String(length=16), nullable=False),
        sa.Column("combine", sa.String(length=8), nullable=False),
        sa.Column("return_window_days", sa.Integer(), nullable=False),
        sa.Column("expiry_months", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("combine IN ('multiply', 'max')", name=op.f("ck_loyalty_program_settings_combine")),
        sa.CheckConstraint(
            "downgrade_policy IN ('none', 'periodic', 'on_return')",
            name=op.f("ck_loyalty_program_settings_downgrade_policy"),
        ),
        sa.CheckConstraint("tier_basis IN ('points', 'spend')", name=op.f("ck_loyalty_program_settings_tier_basis")),
        sa.CheckConstraint("expiry_months >= 0", name=op.f("ck_loyalty_program_settings_expiry_months")),
        sa.CheckConstraint("id = 1", name=op.f("ck_loyalty_program_settings_single_row")),
        sa.CheckConstraint("return_window_days >= 0", name=op.f("ck_loyalty_program_settings_return_window_days")),
        sa.CheckConstraint("tier_window_days >= 1", name=op.f("ck_loyalty_program_settings_tier_window_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_program_settings")),
    )
    op.create_table(
        "loyalty_spend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("order_key", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_spend")),
    )
    op.create_index("ix_loyalty_spend_member_at", "loyalty_spend", ["member_key", "at"], unique=False)
    op.create_table(
        "loyalty_tier_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("from_tier", sa.String(length=32), nullable=True),
        sa.Column("to_tier", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("coupons", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('upgrade', 'periodic', 'on_return')", name=op.f("ck_loyalty_tier_changes_reason")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_tier_changes")),
    )
    op.create_index("ix_loyalty_tier_changes_member_at", "loyalty_tier_changes", ["member_key", "at"], unique=False)
    op.create_table(
        "loyalty_tiers",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("multiplier", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("coupons", sa.JSON(), nullable=False),
        sa.Column("free_shipping", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("multiplier > 0", name=op.f("ck_loyalty_tiers_multiplier")),
        sa.CheckConstraint("threshold >= 0", name=op.f("ck_loyalty_tiers_threshold")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_loyalty_tiers")),
        sa.UniqueConstraint("threshold", name=op.f("uq_loyalty_tiers_threshold")),
    )


def downgrade() -> None:
    op.drop_table("loyalty_tiers")
    op.drop_index("ix_loyalty_tier_changes_member_at", table_name="loyalty_tier_changes")
    op.drop_table("loyalty_tier_changes")
    op.drop_index("ix_loyalty_spend_member_at", table_name="loyalty_spend")
    op.drop_table("loyalty_spend")
    op.drop_table("loyalty_program_settings")
    op.drop_index("ix_loyalty_orders_member_key", table_name="loyalty_orders")
    op.drop_table("loyalty_orders")
    op.drop_table("loyalty_member_tiers")
    op.drop_table("loyalty_job_schedules")
    op.drop_table("loyalty_job_runs")
    op.drop_table("loyalty_event_rules")
    op.drop_table("loyalty_event_awards")
    op.drop_table("loyalty_earning_rules")
