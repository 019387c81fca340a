"""member data keys (envelope encryption) and master-key versions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_data_keys",
        sa.Column("member_key", sa.String(length=32), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_key"],
            ["member_identities.member_key"],
            name=op.f("fk_member_data_keys_member_key_member_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_key", name=op.f("pk_member_data_keys")),
    )
    op.create_table(
        "system_keys",
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_system_keys")),
    )


def downgrade() -> None:
    # The older code cannot open entries sealed under member data keys: refuse rather than lose them.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM member_vault WHERE key_version <> 1 LIMIT 1")).first() is not None:
        raise RuntimeError("vault entries are sealed under member data keys: downgrading below 0011 would lose them")
    op.drop_table("system_keys")
    op.drop_table("member_data_keys")
