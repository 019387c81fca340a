"""points ledger: a redemption reads the member's lots once and spends them in spending order, as far as
needed, in one statement; an earn writes in one statement; a reversal locks without writing; generic plans

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23

``patron_ledger_redeem`` locked the member's wallet with an upsert (a new
version of the row, which its last statement wrote again), made three
aggregate queries over the member's lots (due pending lots, due active lots,
the active total) and spent the lots one at a time (an UPDATE and an INSERT per
lot). Here it locks the wallet with ``SELECT ... FOR UPDATE`` (the upsert stays
for a member without one), reads all three in one query (a pending lot past
its window and past its expiry is activated, then expired, as before), walks
the active lots in spending order (earliest expiry first, then oldest) only as
far as the lot that covers the redemption, and writes every lot's share and
allocation in one statement. It writes the same transactions, entries, lot
states and allocations, with the same ids in the same order; a replayed
redemption no longer touches the wallet's ``updated_at``.

The member's lots index becomes ``(member_key, status, expires_at, id)``, the
spending order, so that walk reads the lots in order without sorting them all
(both databases; it still serves every lookup the old ``(member_key, status)``
index served).

The transaction id comes from the id column's sequence named once, when the
function is made, instead of being looked up on each call. An earn updates the
member's wallet with a plain UPDATE (an upsert only for a member without one),
which skips the upsert's probe of the index and its separate row lock.

An earn writes its transaction, entries and lot in one statement (they were
three). A reversal reads the reference's open originals and their members in
one query (it was two, each round) and locks their wallets with ``SELECT ...
FOR UPDATE`` in the same key order (an upsert only for a member without a
wallet); each of its wallet updates stamps ``updated_at``, which the lock's
upsert used to do.

The ledger functions run their statements with generic plans
(``plan_cache_mode = force_generic_plan``): every statement in them looks a
member's rows up by key, and planning them again on each call was a tenth of
the database's work per operation. PostgreSQL only; on SQLite this revision
does nothing.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_GENERIC = "SET plan_cache_mode = force_generic_plan"

# The new redemption. The parts it keeps from earlier revisions are taken from their texts (see _redeem):
# the header (with generic plans), 0010's two settlement steps without their queries, 0015's claim, the
# transaction and its entries, the start of 0010's walk over the lots.
_REDEEM = """
-- header
DECLARE
    v_claim integer;
    v_hash text;
    v_txn integer;
    v_job integer;
    v_total bigint;
    v_ids integer[];
    v_due_ids integer[];
    v_due bigint;
    v_available bigint;
    v_left bigint;
    v_take bigint;
    v_lot record;
    v_lots integer[] := '{}';
    v_takes bigint[] := '{}';
BEGIN
    -- lock the wallet of the member (created if new)
    PERFORM 1 FROM points_wallets WHERE member_key = p_member FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO points_wallets AS w (member_key, available, pending, lifetime_earned, lifetime_redeemed,
                                         updated_at)
        VALUES (p_member, 0, 0, 0, 0, p_now)
        ON CONFLICT (member_key) DO UPDATE SET updated_at = EXCLUDED.updated_at;
    END IF;

    -- the member's live lots, read once: pending lots whose window ended (they activate), lots past their
    -- expiry once activated (what remains of them expires), and what stays to spend
    SELECT array_agg(l.id ORDER BY l.expires_at ASC NULLS LAST, l.id)
               FILTER (WHERE l.status = 'pending' AND l.pending_until <= p_now),
           COALESCE(sum(l.remaining) FILTER (WHERE l.status = 'pending' AND l.pending_until <= p_now), 0),
           array_agg(l.id ORDER BY l.expires_at ASC NULLS LAST, l.id)
               FILTER (WHERE (l.status = 'active' OR l.pending_until <= p_now) AND l.expires_at <= p_now),
           COALESCE(sum(l.remaining)
               FILTER (WHERE (l.status = 'active' OR l.pending_until <= p_now) AND l.expires_at <= p_now), 0),
           COALESCE(sum(l.remaining)
               FILTER (WHERE (l.status = 'active' OR l.pending_until <= p_now)
                         AND (l.expires_at IS NULL OR l.expires_at > p_now)), 0)
      INTO v_ids, v_total, v_due_ids, v_due, v_available
      FROM points_lots l
     WHERE l.member_key = p_member AND l.status IN ('pending', 'active');

-- settle
-- claim
    IF v_available < p_points THEN
        RAISE EXCEPTION USING ERRCODE = 'PT402',
            MESSAGE = 'member ' || p_member || ' has ' || v_available || ' available points; ' || p_points || ' needed';
    END IF;
-- record
    -- spend the earliest-expiring active lots first, then the oldest (read in that order from the member's
    -- index, up to the lot that covers what is owed), then write every lot's share in one statement
-- walk
        v_lots := v_lots || v_lot.id;
        v_takes := v_takes || v_take;
        v_left := v_left - v_take;
    END LOOP;
    WITH spent AS (
        UPDATE points_lots l
           SET remaining = l.remaining - s.take,
               status = CASE WHEN l.remaining - s.take = 0 THEN 'consumed' ELSE l.status END
          FROM unnest(v_lots, v_takes) AS s(id, take)
         WHERE l.id = s.id
    )
    INSERT INTO lot_allocations (transaction_id, lot_id, points)
    SELECT v_txn, s.id, s.take FROM unnest(v_lots, v_takes) WITH ORDINALITY AS s(id, take, n)
     WHERE s.take <> 0
     ORDER BY s.n;
    UPDATE points_wallets
       SET available = available - p_points, lifetime_redeemed = lifetime_redeemed + p_redeemed, updated_at = p_now
     WHERE member_key = p_member;

    txn_id := v_txn;
    stored := NULL;
    RETURN NEXT;
END $$
"""

_SEQUENCE_LOOKUP = "nextval(pg_get_serial_sequence('ledger_transactions', 'id'))"

# an earn's last statement: its wallet upsert becomes an UPDATE, with the upsert kept for a member without a wallet
_EARN_WALLET_UPDATE = """
    UPDATE points_wallets
       SET available = available + CASE WHEN p_pending THEN 0 ELSE p_points END,
           pending = pending + CASE WHEN p_pending THEN p_points ELSE 0 END,
           lifetime_earned = lifetime_earned + p_earned,
           updated_at = p_now
     WHERE member_key = p_member;
    IF NOT FOUND THEN
-- upsert
    END IF;
"""


def _earn_wallet() -> str:
    """The earn's wallet upsert as revision 0010 wrote it (and 0015 moved it to the earn's end)."""
    claimed = _revision("0015_ledger_claim_once.py")
    old: str = _revision("0010_ledger_functions.py")._EARN
    start, end = str(claimed._WALLET_START), str(claimed._WALLET_END)
    return old[old.index(start) : old.index(end, old.index(start)) + len(end)]


def _one_statement(earn: str) -> str:
    """The earn's three INSERTs (its transaction, entries and lot) as one statement: data-modifying CTEs.

    The transaction's id is taken from the sequence before them, so none waits for another's RETURNING; the
    foreign keys are checked when the statement ends, when all three rows are in.
    """
    block = _cut(earn, "    INSERT INTO ledger_transactions (id, kind", "\n    UPDATE points_wallets")
    transaction, entries, lot = block.rstrip().rstrip(";").split(";\n")
    merged = (
        "    WITH new_transaction AS (\n"
        + textwrap.indent(transaction, "    ")
        + "\n    ), new_entries AS (\n"
        + textwrap.indent(entries, "    ")
        + "\n    )\n"
        + lot
        + ";\n"
    )
    return earn.replace(block, merged)


# A reversal's wallet locks: revision 0013 read the open originals and then their members (two queries each
# round, and one round more to see that no member was added) and locked each wallet with an upsert, a new row
# version that the reversal's own updates then wrote again. Here one query reads both, and the wallets are
# locked with SELECT ... FOR UPDATE in the same key order; the upsert stays for a member without a wallet.
_REVERSE_LOCKS = """
    LOOP
        SELECT array_agg(t.id ORDER BY t.id),
               array_agg(DISTINCT t.member_key COLLATE "C" ORDER BY t.member_key COLLATE "C")
          INTO v_originals, v_members
          FROM ledger_transactions t
         WHERE t.reference = p_reference AND t.kind IN ('earn', 'redeem')
           AND NOT EXISTS (SELECT 1 FROM ledger_reversals r WHERE r.original_id = t.id);
        EXIT WHEN v_members IS NULL OR v_members <@ v_locked;
        FOR v_member IN SELECT m FROM unnest(v_members) AS m WHERE m <> ALL (v_locked) ORDER BY m COLLATE "C" LOOP
            PERFORM 1 FROM points_wallets w WHERE w.member_key = v_member FOR UPDATE;
            IF NOT FOUND THEN
-- upsert
            END IF;
            v_locked := v_locked || v_member;
        END LOOP;
    END LOOP;
"""

# made by revision 0013; the settlement keeps its text and takes generic plans
_SETTLE = "patron_ledger_settle(text, timestamptz)"


def _reverse() -> str:
    """Revision 0013's reversal with the locks above and generic plans."""
    old = _revision("0013_ledger_reverse.py")._REVERSE
    locks = _cut(old, "    LOOP\n        SELECT array_agg(t.id ORDER BY t.id)", "\n    IF v_members IS NULL THEN")
    upsert = _cut(locks, "            INSERT INTO points_wallets AS w", "            v_locked := v_locked || v_member;")
    text = old.replace(locks, _REVERSE_LOCKS.lstrip("\n").replace("-- upsert\n", textwrap.indent(upsert, "    ")))
    # the lock no longer stamps the wallet: each of the reversal's wallet updates does
    text, stamped = re.subn(r"UPDATE points_wallets(\s+)SET ", r"UPDATE points_wallets\1SET updated_at = p_now, ", text)
    if stamped != 5:
        raise RuntimeError(f"revision 0013's reversal changed: {stamped} wallet updates, not 5")
    return text.replace("LANGUAGE plpgsql AS $$", f"LANGUAGE plpgsql {_GENERIC} AS $$")


def _revision(filename: str) -> ModuleType:
    """An earlier revision's module, for the function texts it holds."""
    spec = importlib.util.spec_from_file_location(
        f"patron_migration_{filename[:4]}", Path(__file__).with_name(filename)
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cut(text: str, start: str, end: str) -> str:
    """The part of ``text`` from ``start`` up to ``end`` (each must be found once)."""
    for part in (start, end):
        if text.count(part) != 1:
            raise RuntimeError(f"an earlier revision's function text changed: {part.strip()[:60]!r}")
    return text[text.index(start) : text.index(end)]


def _redeem(sequence: str) -> str:
    """The new redemption, with revision 0010's two settlement steps (without their queries) and 0015's claim."""
    old, claimed = _revision("0010_ledger_functions.py"), _revision("0015_ledger_claim_once.py")
    activate = _cut(old._REDEEM, "    -- settle: pending lots", "    -- settle: what remains")
    expire = _cut(old._REDEEM, "    -- settle: what remains", "    -- spend the earliest-expiring")

    def without_query(step: str) -> str:  # the query above reads what both steps' own queries read
        return step[: step.index("    SELECT array_agg")] + step[step.index("    IF v_ids IS NOT NULL") :]

    expire = without_query(expire).replace("v_ids", "v_due_ids").replace("v_total", "v_due")
    claim = claimed._TAKE_ID + claimed._replace(old._CLAIM, claimed._EMPTY_RESPONSE, claimed._FINAL_RESPONSE)
    claim = claim.replace(_SEQUENCE_LOOKUP, sequence).lstrip("\n") + "\n"
    header = _cut(old._REDEEM, "\nCREATE OR REPLACE FUNCTION", "DECLARE\n").lstrip("\n")
    header = header.replace("LANGUAGE plpgsql AS $$", f"LANGUAGE plpgsql {_GENERIC} AS $$")
    entries = _cut(
        old._REDEEM, "\n    INSERT INTO ledger_entries (transaction_id, account_type", "    v_left := p_points;"
    )
    record = claimed._NEW_INSERT + entries.lstrip("\n")
    walk = _cut(old._REDEEM, "    v_left := p_points;\n", "        UPDATE points_lots\n")
    parts = {"header": header, "settle": without_query(activate) + expire, "claim": claim, "record": record}
    text = _REDEEM
    for name, part in {**parts, "walk": walk}.items():
        text = text.replace(f"-- {name}\n", part)
    return text


def _sequence() -> str:
    """``nextval`` of the transaction ids' sequence, named as this database names it."""
    name = op.get_bind().exec_driver_sql("SELECT pg_get_serial_sequence('ledger_transactions', 'id')").scalar()
    if not name:
        raise RuntimeError("ledger_transactions.id has no sequence")
    return f"nextval('{name}'::regclass)"


def upgrade() -> None:
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_points_lots_member_key_status")
        batch_op.create_index("ix_points_lots_member_spend_order", ["member_key", "status", "expires_at", "id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    sequence = _sequence()
    earn, _ = _revision("0015_ledger_claim_once.py")._functions()
    wallet = _earn_wallet()
    for part in (_SEQUENCE_LOOKUP, "LANGUAGE plpgsql AS $$", wallet):
        if earn.count(part) != 1:
            raise RuntimeError(f"revision 0015's earn function changed: {part.strip()[:60]!r}")
    update = _EARN_WALLET_UPDATE.replace("-- upsert\n", textwrap.indent(wallet.lstrip("\n"), "    "))
    earn = earn.replace(_SEQUENCE_LOOKUP, sequence).replace(wallet, update)
    earn = earn.replace("LANGUAGE plpgsql AS $$", f"LANGUAGE plpgsql {_GENERIC} AS $$")
    earn = _one_statement(earn)
    redeem = _redeem(sequence)
    for statement in (earn, redeem, _reverse()):  # driver-level: the bodies hold colons that are not bind parameters
        op.get_bind().exec_driver_sql(statement)
    op.execute(f"ALTER FUNCTION {_SETTLE} {_GENERIC}")


def downgrade() -> None:
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_points_lots_member_spend_order")
        batch_op.create_index("ix_points_lots_member_key_status", ["member_key", "status"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION {_SETTLE} RESET plan_cache_mode")
    # CREATE OR REPLACE also drops the SET clause
    for statement in (
        *_revision("0015_ledger_claim_once.py")._functions(),
        _revision("0013_ledger_reverse.py")._REVERSE,
    ):
        op.get_bind().exec_driver_sql(statement)
