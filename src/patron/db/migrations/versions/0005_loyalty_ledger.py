"""points ledger and idempotency keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("ledger_transactions", "ledger_entries", "lot_allocations", "ledger_reversals")

_PG_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION patron_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION patron_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE transaction_id = NEW.transaction_id) <> 0 THEN
            RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
)


def _kinds(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _create_tables() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_records_scope")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("natural_key", sa.String(length=160), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("memo", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            _kinds("kind", ("earn", "redeem", "reverse", "adjust", "activate", "expire")),
            name=op.f("ck_ledger_transactions_kind"),
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_ledger_transactions_points")),
        sa.CheckConstraint("shortfall >= 0", name=op.f("ck_ledger_transactions_shortfall")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("natural_key", name=op.f("uq_ledger_transactions_natural_key")),
    )
    op.create_index("ix_ledger_transactions_member_key_id", "ledger_transactions", ["member_key", "id"])
    op.create_index("ix_ledger_transactions_reference", "ledger_transactions", ["reference"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("account_name", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            _kinds("account_type", ("available", "pending", "source", "sink", "expiry", "adjustment")),
            name=op.f("ck_ledger_entries_account_type"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_amount")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account_name", "account_type"])
    op.create_index(op.f("ix_ledger_entries_transaction_id"), "ledger_entries", ["transaction_id"])
    op.create_table(
        "points_wallets",
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("available >= 0", name=op.f("ck_points_wallets_available")),
        sa.CheckConstraint("pending >= 0", name=op.f("ck_points_wallets_pending")),
        sa.CheckConstraint("lifetime_earned >= 0", name=op.f("ck_points_wallets_lifetime_earned")),
        sa.CheckConstraint("lifetime_redeemed >= 0", name=op.f("ck_points_wallets_lifetime_redeemed")),
        sa.PrimaryKeyConstraint("member_key", name=op.f("pk_points_wallets")),
    )
    op.create_table(
        "points_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            _kinds("status", ("pending", "active", "cancelled", "expired", "consumed")),
            name=op.f("ck_points_lots_status"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_lots_points")),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name=op.f("ck_points_lots_remaining")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_points_lots_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lots")),
    )
    op.create_index("ix_points_lots_member_key_status", "points_lots", ["member_key", "status"])
    op.create_index("ix_points_lots_status_pending_until", "points_lots", ["status", "pending_until"])
    op.create_index("ix_points_lots_status_expires_at", "points_lots", ["status", "expires_at"])
    op.create_index(op.f("ix_points_lots_transaction_id"), "points_lots", ["transaction_id"])
    op.create_table(
        "lot_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points <> 0", name=op.f("ck_lot_allocations_points")),
        sa.ForeignKeyConstraint(["lot_id"], ["points_lots.id"], name=op.f("fk_lot_allocations_lot_id_points_lots")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_lot_allocations_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_allocations")),
    )
    op.create_index(op.f("ix_lot_allocations_lot_id"), "lot_allocations", ["lot_id"])
    op.create_index(op.f("ix_lot_allocations_transaction_id"), "lot_allocations", ["transaction_id"])
    op.create_table(
        "ledger_reversals",
        sa.Column("original_id", sa.Integer(), nullable=False),
        sa.Column("reversal_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["original_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_reversals_original_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["reversal_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_reversals_reversal_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("original_id", name=op.f("pk_ledger_reversals")),
    )
    op.create_index(op.f("ix_ledger_reversals_reversal_id"), "ledger_reversals", ["reversal_id"])


def _create_triggers() -> None:
    """The ledger is append-only; on PostgreSQL each transaction's entries must also sum to zero at commit."""
    if op.get_bind().dialect.name == "postgresql":
        for function in _PG_FUNCTIONS:
            op.execute(function)
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION patron_append_only()"
            )
        op.execute(
            "CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION patron_ledger_balanced()"
        )
        return
    for table in _APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def upgrade() -> None:
    _create_tables()
    _create_triggers()


def downgrade() -> None:
    for table in ("ledger_reversals", "lot_allocations", "points_lots", "points_wallets", "ledger_entries"):
        op.drop_table(table)
    op.drop_table("ledger_transactions")
    op.drop_table("idempotency_records")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS patron_ledger_balanced()")
        op.execute("DROP FUNCTION IF EXISTS patron_append_only()")
