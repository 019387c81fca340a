"""points ledger: the idempotency record is written once, with its response; an earn locks the wallet last;
partial indexes for the lot sweeps

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22

The earn and redeem functions of revision 0010 claimed an idempotency key with
an empty response and filled it in at the end (an INSERT and an UPDATE of the
same row, the UPDATE while the member's wallet was locked). Here each takes its
transaction id from the sequence first, so the claim stores the final response
at once and the UPDATE goes. An earn (or a positive adjustment) also updates
the member's wallet as its last statement instead of its first: nothing it
writes before depends on the wallet, so the wallet row, which every operation
on the member locks, is held only for that statement and the commit. A
redemption still locks the wallet first (it reads the member's lots under that
lock) and settles the member's due lots before it claims its key, so the
settlement's transactions keep their place before the redemption's. Everything else is revision 0010's text, changed by the exact
replacements below (each must match once).

The lots' indexes for the activation and expiry sweeps become partial: one over
the pending lots' ``pending_until``, one over the active lots' ``expires_at``,
so earning or consuming a lot no longer writes an entry in the index of a sweep
that cannot find it (both databases). The functions are PostgreSQL's only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# revision 0010's claim, taking the transaction id first and storing the final response (see _functions)
_TAKE_ID = "\n    v_txn := nextval(pg_get_serial_sequence('ledger_transactions', 'id'));"
_EMPTY_RESPONSE = "        VALUES (p_scope, p_key, p_hash, CAST('{}' AS json), p_now)\n"
_FINAL_RESPONSE = """        VALUES (p_scope, p_key, p_hash,
                CAST(jsonb_set(CAST(p_response AS jsonb), '{id}', to_jsonb(v_txn)) AS json), p_now)
"""

_NEW_STORE = """
    txn_id := v_txn;
    stored := NULL;
    RETURN NEXT;
"""

_OLD_INSERT = """    INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo, created_at)
    VALUES (p_kind, p_member, p_reference, p_natural_key, p_points, 0, p_actor, p_memo, p_now)
    RETURNING id INTO v_txn;
"""

_NEW_INSERT = """    INSERT INTO ledger_transactions (id, kind, member_key, reference, natural_key, points, shortfall, actor, memo,
                                     created_at)
    VALUES (v_txn, p_kind, p_member, p_reference, p_natural_key, p_points, 0, p_actor, p_memo, p_now);
"""

_WALLET_START = "\n    INSERT INTO points_wallets AS w"
_WALLET_END = "updated_at = EXCLUDED.updated_at;\n"


_SPEND = "    -- spend the earliest-expiring active lots first, then the oldest\n"


def _revision_0010() -> ModuleType:
    path = Path(__file__).with_name("0010_ledger_functions.py")
    spec = importlib.util.spec_from_file_location("patron_migration_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replace(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"revision 0010's function text changed: {old.strip()[:60]!r} found {text.count(old)} times")
    return text.replace(old, new)


def _functions() -> tuple[str, str]:
    """The new earn and redeem functions, from revision 0010's."""
    old = _revision_0010()
    claim = _TAKE_ID + _replace(old._CLAIM, _EMPTY_RESPONSE, _FINAL_RESPONSE)
    start = old._EARN.index(_WALLET_START)  # the earn's wallet upsert, moved whole to the end
    wallet = old._EARN[start : old._EARN.index(_WALLET_END, start) + len(_WALLET_END)]
    earn = _replace(old._EARN, old._CLAIM, claim)
    earn = _replace(earn, wallet, "\n")
    earn = _replace(earn, old._STORE, wallet + _NEW_STORE)
    # a redemption claims its key after settling the member's due lots, so that the settlement's transactions
    # keep coming before the redemption's in id order (as in the Python path)
    redeem = _replace(old._REDEEM, old._CLAIM, "\n")
    redeem = _replace(redeem, _SPEND, claim + _SPEND)
    redeem = _replace(redeem, old._STORE, _NEW_STORE)
    return _replace(earn, _OLD_INSERT, _NEW_INSERT), _replace(redeem, _OLD_INSERT, _NEW_INSERT)


_PENDING = "status = 'pending'"
_ACTIVE = "status = 'active'"


def upgrade() -> None:
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_points_lots_status_pending_until")
        batch_op.drop_index("ix_points_lots_status_expires_at")
        batch_op.create_index(
            "ix_points_lots_pending_until",
            ["pending_until"],
            sqlite_where=sa.text(_PENDING),
            postgresql_where=sa.text(_PENDING),
        )
        batch_op.create_index(
            "ix_points_lots_active_expires_at",
            ["expires_at"],
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _functions():  # driver-level: the bodies hold colons that are not bind parameters
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_points_lots_active_expires_at")
        batch_op.drop_index("ix_points_lots_pending_until")
        batch_op.create_index("ix_points_lots_status_pending_until", ["status", "pending_until"])
        batch_op.create_index("ix_points_lots_status_expires_at", ["status", "expires_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    old = _revision_0010()
    for statement in (old._EARN, old._REDEEM):
        op.get_bind().exec_driver_sql(statement)
