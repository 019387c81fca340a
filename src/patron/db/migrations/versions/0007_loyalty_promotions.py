"""coupons, promotions and rewards

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotion_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("brands", sa.JSON(), nullable=False),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("min_spend_cents", sa.BigInteger(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("global_limit", sa.Integer(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=True),
        sa.Column("spent_cents", sa.BigInteger(), nullable=False),
        sa.Column("stack_group", sa.String(length=64), nullable=True),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('fixed', 'percent', 'threshold_tiers', 'free_shipping', 'gift')",
            name=op.f("ck_promotion_templates_kind"),
        ),
        sa.CheckConstraint("status IN ('active', 'paused', 'archived')", name=op.f("ck_promotion_templates_status")),
        sa.CheckConstraint(
            "budget_cents IS NULL OR budget_cents >= 0", name=op.f("ck_promotion_templates_budget_cents")
        ),
        sa.CheckConstraint(
            "ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name=op.f("ck_promotion_templates_window")
        ),
        sa.CheckConstraint(
            "global_limit IS NULL OR global_limit >= 1", name=op.f("ck_promotion_templates_global_limit")
        ),
        sa.CheckConstraint("min_spend_cents >= 0", name=op.f("ck_promotion_templates_min_spend")),
        sa.CheckConstraint(
            "per_member_limit IS NULL OR per_member_limit >= 1", name=op.f("ck_promotion_templates_per_member_limit")
        ),
        sa.CheckConstraint(
            "spent_cents >= 0 AND (budget_cents IS NULL OR spent_cents <= budget_cents)",
            name=op.f("ck_promotion_templates_spent_cents"),
        ),
        sa.CheckConstraint(
            "used >= 0 AND (global_limit IS NULL OR used <= global_limit)", name=op.f("ck_promotion_templates_used")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_promotion_templates_code")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_reference", sa.String(length=128), nullable=True),
        sa.Column("discount_cents", sa.BigInteger(), nullable=True),
        sa.Column("usage_member", sa.String(length=32), nullable=True),
        sa.Column("batch", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('issued', 'reserved', 'redeemed', 'released', 'expired')", name=op.f("ck_coupons_status")
        ),
        sa.CheckConstraint("discount_cents IS NULL OR discount_cents >= 0", name=op.f("ck_coupons_discount_cents")),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["promotion_templates.id"],
            name=op.f("fk_coupons_template_id_promotion_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_batch"), ["batch"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_member_key"), ["member_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_template_id"), ["template_id"], unique=False)

    op.create_table(
        "promotion_usage",
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_promotion_usage_uses")),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["promotion_templates.id"],
            name=op.f("fk_promotion_usage_template_id_promotion_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", "member_key", name=op.f("pk_promotion_usage")),
    )
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points_cost", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("exchanged", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind <> 'coupon' OR template_id IS NOT NULL", name=op.f("ck_rewards_coupon_template")),
        sa.CheckConstraint("kind IN ('coupon', 'gift')", name=op.f("ck_rewards_kind")),
        sa.CheckConstraint(
            "per_member_limit IS NULL OR per_member_limit >= 1", name=op.f("ck_rewards_per_member_limit")
        ),
        sa.CheckConstraint("points_cost >= 1", name=op.f("ck_rewards_points_cost")),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_rewards_stock")),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["promotion_templates.id"],
            name=op.f("fk_rewards_template_id_promotion_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("name", name=op.f("uq_rewards_name")),
    )
    op.create_table(
        "promotion_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=True),
        sa.Column("order_reference", sa.String(length=128), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('reserved', 'redeemed', 'released')", name=op.f("ck_promotion_redemptions_status")
        ),
        sa.CheckConstraint("discount_cents >= 0", name=op.f("ck_promotion_redemptions_discount_cents")),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_promotion_redemptions_coupon_id_coupons"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["promotion_templates.id"],
            name=op.f("fk_promotion_redemptions_template_id_promotion_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_redemptions")),
    )
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_redemptions_coupon_id"), ["coupon_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_promotion_redemptions_template_id"), ["template_id"], unique=False)

    op.create_table(
        "reward_exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("coupon_code", sa.String(length=40), nullable=True),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_exchanges_reward_id_rewards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_exchanges")),
        sa.UniqueConstraint("reference", name=op.f("uq_reward_exchanges_reference")),
    )
    with op.batch_alter_table("reward_exchanges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reward_exchanges_member_key"), ["member_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_reward_exchanges_reward_id"), ["reward_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reward_exchanges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_exchanges_reward_id"))
        batch_op.drop_index(batch_op.f("ix_reward_exchanges_member_key"))

    op.drop_table("reward_exchanges")
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_redemptions_template_id"))
        batch_op.drop_index(batch_op.f("ix_promotion_redemptions_coupon_id"))

    op.drop_table("promotion_redemptions")
    op.drop_table("rewards")
    op.drop_table("promotion_usage")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_template_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_member_key"))
        batch_op.drop_index(batch_op.f("ix_coupons_batch"))

    op.drop_table("coupons")
    op.drop_table("promotion_templates")
