"""points ledger: reversal as one database call on PostgreSQL; uses of automatic promotions

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22

``patron_ledger_reverse`` does inside the database exactly what
:func:`patron.loyalty.ledger_reversal.python_reverse` does: lock the wallets of
the members with open earns and redemptions under the reference (in key order),
settle them (``patron_ledger_settle``: pending lots past their window activate,
due lots expire), refund the redemption into the lots it spent, cancel or claw
back the earn, and record one balanced ``reverse`` transaction. With an
idempotency scope it claims the key as the functions of migration ``0010`` do
(SQLSTATE ``PT409`` for another request under the key) and returns the stored
response on a replay. It returns ``(replayed, response)``, the response being
``{"reversal": <transaction or null>}``. On SQLite the functions are not made.

Promotion redemptions also record the uses of automatic promotions (no coupon):
``coupon_id`` becomes nullable, a partial unique index keeps one live use of an
automatic promotion per order, and an index finds an order's uses.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SETTLE = """
CREATE OR REPLACE FUNCTION patron_ledger_settle(p_member text, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_ids integer[];
    v_total bigint;
    v_job integer;
BEGIN
    -- pending lots whose window ended become available
    SELECT array_agg(l.id ORDER BY l.expires_at ASC NULLS LAST, l.id), COALESCE(sum(l.remaining), 0)
      INTO v_ids, v_total
      FROM points_lots l
     WHERE l.member_key = p_member AND l.status = 'pending' AND l.pending_until <= p_now;
    IF v_ids IS NOT NULL THEN
        INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo,
                                         created_at)
        VALUES ('activate', p_member, NULL, NULL, v_total, 0, 'system:activation', '', p_now)
        RETURNING id INTO v_job;
        IF v_total <> 0 THEN
            INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)
            VALUES (v_job, 'pending', p_member, -v_total), (v_job, 'available', p_member, v_total);
        END IF;
        UPDATE points_lots SET status = 'active' WHERE id = ANY (v_ids);
        IF v_total <> 0 THEN
            UPDATE points_wallets SET pending = pending - v_total, available = available + v_total
             WHERE member_key = p_member;
        END IF;
    END IF;

    -- what remains of due active lots expires
    SELECT array_agg(l.id ORDER BY l.expires_at ASC NULLS LAST, l.id), COALESCE(sum(l.remaining), 0)
      INTO v_ids, v_total
      FROM points_lots l
     WHERE l.member_key = p_member AND l.status = 'active' AND l.expires_at <= p_now;
    IF v_ids IS NOT NULL THEN
        INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo,
                                         created_at)
        VALUES ('expire', p_member, NULL, NULL, v_total, 0, 'system:expiry', '', p_now)
        RETURNING id INTO v_job;
        IF v_total <> 0 THEN
            INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)
            VALUES (v_job, 'available', p_member, -v_total), (v_job, 'expiry', 'expiry', v_total);
        END IF;
        INSERT INTO lot_allocations (transaction_id, lot_id, points)
        SELECT v_job, l.id, l.remaining
          FROM points_lots l JOIN unnest(v_ids) WITH ORDINALITY AS d(id, n) ON d.id = l.id
         WHERE l.remaining <> 0
         ORDER BY d.n;
        UPDATE points_lots SET remaining = 0, status = 'expired' WHERE id = ANY (v_ids);
        IF v_total <> 0 THEN
            UPDATE points_wallets SET available = available - v_total WHERE member_key = p_member;
        END IF;
    END IF;
END $$
"""

# One function, longer than most: the plan must be complete before the transaction row (append-only) is
# written, so lot updates go out as they are decided while legs, allocations and new lots are gathered in
# arrays and written at the end, in the order the Python path writes them.
_REVERSE = """
CREATE OR REPLACE FUNCTION patron_ledger_reverse(
    p_scope text, p_key text, p_hash text, p_response json,
    p_reference text, p_actor text, p_memo text, p_now timestamptz
) RETURNS TABLE (replayed boolean, response json) LANGUAGE plpgsql AS $$
DECLARE
    v_claim integer;
    v_hash text;
    v_locked text[] := '{}';
    v_members text[];
    v_member text;
    v_originals integer[];
    v_first text;
    v_orig record;
    v_lot record;
    v_other record;
    v_alloc record;
    v_sink text;
    v_types text[] := '{}';
    v_names text[] := '{}';
    v_amounts bigint[] := '{}';
    v_alloc_lots integer[] := '{}';
    v_alloc_points bigint[] := '{}';
    v_new_members text[] := '{}';
    v_new_sources text[] := '{}';
    v_new_points bigint[] := '{}';
    v_new_expiry timestamptz[] := '{}';
    v_moved bigint := 0;
    v_shortfall bigint := 0;
    v_expired bigint;
    v_need bigint;
    v_took bigint;
    v_take bigint;
    v_txn integer;
    v_entries jsonb;
BEGIN
    IF p_scope IS NOT NULL THEN
        INSERT INTO idempotency_records (scope, key, request_hash, response, created_at)
        VALUES (p_scope, p_key, p_hash, CAST('{}' AS json), p_now)
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING id INTO v_claim;
        IF v_claim IS NULL THEN
            SELECT r.request_hash, r.response INTO v_hash, response
              FROM idempotency_records r WHERE r.scope = p_scope AND r.key = p_key;
            IF v_hash <> p_hash THEN
                RAISE EXCEPTION 'idempotency key used with a different request' USING ERRCODE = 'PT409';
            END IF;
            replayed := true;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    replayed := false;

    -- lock the wallets of the members with open earns and redemptions under the reference, in key order,
    -- reading again until no new member shows up
    LOOP
        SELECT array_agg(t.id ORDER BY t.id) INTO v_originals
          FROM ledger_transactions t
         WHERE t.reference = p_reference AND t.kind IN ('earn', 'redeem')
           AND NOT EXISTS (SELECT 1 FROM ledger_reversals r WHERE r.original_id = t.id);
        SELECT array_agg(d.m ORDER BY d.m COLLATE "C") INTO v_members
          FROM (SELECT DISTINCT t.member_key AS m FROM ledger_transactions t WHERE t.id = ANY (v_originals)) AS d;
        EXIT WHEN v_members IS NULL OR v_members <@ v_locked;
        FOR v_member IN SELECT m FROM unnest(v_members) AS m WHERE m <> ALL (v_locked) ORDER BY m COLLATE "C" LOOP
            INSERT INTO points_wallets AS w (member_key, available, pending, lifetime_earned, lifetime_redeemed,
                                             updated_at)
            VALUES (v_member, 0, 0, 0, 0, p_now)
            ON CONFLICT (member_key) DO UPDATE SET updated_at = EXCLUDED.updated_at;
            v_locked := v_locked || v_member;
        END LOOP;
    END LOOP;

    IF v_members IS NULL THEN
        response := CAST('{"reversal": null}' AS json);
    ELSE
        FOREACH v_member IN ARRAY v_members LOOP
            PERFORM patron_ledger_settle(v_member, p_now);
        END LOOP;
        SELECT t.member_key INTO v_first FROM ledger_transactions t WHERE t.id = v_originals[1];

        FOR v_orig IN
            SELECT t.id, t.kind, t.member_key FROM ledger_transactions t
             WHERE t.id = ANY (v_originals) ORDER BY t.kind <> 'redeem', t.id
        LOOP
            IF v_orig.kind = 'redeem' THEN
                -- refund into the lots it spent; a cancelled lot gets a new lot, an expired one goes to expiry
                SELECT e.account_name INTO v_sink FROM ledger_entries e
                 WHERE e.transaction_id = v_orig.id AND e.account_type = 'sink' ORDER BY e.id LIMIT 1;
                FOR v_alloc IN
                    SELECT a.lot_id, a.points FROM lot_allocations a WHERE a.transaction_id = v_orig.id ORDER BY a.id
                LOOP
                    SELECT l.id, l.source, l.status, l.expires_at INTO v_lot FROM points_lots l
                     WHERE l.id = v_alloc.lot_id;
                    v_moved := v_moved + v_alloc.points;
                    v_types := v_types || 'sink'::text;
                    v_names := v_names || v_sink;
                    v_amounts := v_amounts || -v_alloc.points;
                    IF v_lot.expires_at IS NOT NULL AND v_lot.expires_at <= p_now THEN
                        v_types := v_types || 'expiry'::text;
                        v_names := v_names || 'expiry'::text;
                        v_amounts := v_amounts || v_alloc.points;
                        UPDATE points_wallets SET lifetime_redeemed = lifetime_redeemed - v_alloc.points
                         WHERE member_key = v_orig.member_key;
                        CONTINUE;
                    END IF;
                    v_types := v_types || 'available'::text;
                    v_names := v_names || v_orig.member_key;
                    v_amounts := v_amounts || v_alloc.points;
                    UPDATE points_wallets
                       SET available = available + v_alloc.points,
                           lifetime_redeemed = lifetime_redeemed - v_alloc.points
                     WHERE member_key = v_orig.member_key;
                    IF v_lot.status = 'cancelled' THEN
                        v_new_members := v_new_members || v_orig.member_key;
                        v_new_sources := v_new_sources || v_lot.source;
                        v_new_points := v_new_points || v_alloc.points;
                        v_new_expiry := v_new_expiry || v_lot.expires_at;
                    ELSE
                        UPDATE points_lots SET remaining = remaining + v_alloc.points, status = 'active'
                         WHERE id = v_lot.id;
                        v_alloc_lots := v_alloc_lots || v_lot.id;
                        v_alloc_points := v_alloc_points || -v_alloc.points;
                    END IF;
                END LOOP;
                CONTINUE;
            END IF;

            -- an earn: a pending lot is cancelled; an active one is clawed back, from itself first
            SELECT l.id, l.source, l.points, l.remaining, l.status INTO v_lot FROM points_lots l
             WHERE l.transaction_id = v_orig.id ORDER BY l.id LIMIT 1;
            UPDATE points_wallets SET lifetime_earned = lifetime_earned - v_lot.points
             WHERE member_key = v_orig.member_key;
            IF v_lot.status = 'pending' THEN
                v_moved := v_moved + v_lot.remaining;
                v_types := v_types || ARRAY['pending', 'source'];
                v_names := v_names || ARRAY[v_orig.member_key, v_lot.source];
                v_amounts := v_amounts || ARRAY[-v_lot.remaining, v_lot.remaining];
                UPDATE points_wallets SET pending = pending - v_lot.remaining WHERE member_key = v_orig.member_key;
                UPDATE points_lots
                   SET remaining = remaining - v_lot.remaining,
                       status = CASE WHEN remaining - v_lot.remaining = 0 THEN 'cancelled' ELSE status END
                 WHERE id = v_lot.id;
                IF v_lot.remaining <> 0 THEN
                    v_alloc_lots := v_alloc_lots || v_lot.id;
                    v_alloc_points := v_alloc_points || v_lot.remaining;
                END IF;
                CONTINUE;
            END IF;
            SELECT COALESCE(sum(a.points), 0) INTO v_expired
              FROM lot_allocations a JOIN ledger_transactions t ON t.id = a.transaction_id
             WHERE a.lot_id = v_lot.id AND t.kind = 'expire';
            v_need := v_lot.points - v_expired;
            v_took := LEAST(v_lot.remaining, v_need);
            UPDATE points_lots
               SET remaining = remaining - v_took,
                   status = CASE WHEN remaining - v_took = 0 THEN 'cancelled' ELSE status END
             WHERE id = v_lot.id;
            IF v_took <> 0 THEN
                v_alloc_lots := v_alloc_lots || v_lot.id;
                v_alloc_points := v_alloc_points || v_took;
            END IF;
            FOR v_other IN
                SELECT l.id, l.remaining FROM points_lots l
                 WHERE l.member_key = v_orig.member_key AND l.status = 'active' AND l.id <> v_lot.id
                 ORDER BY l.expires_at ASC NULLS LAST, l.id
            LOOP
                EXIT WHEN v_took >= v_need;
                v_take := LEAST(v_other.remaining, v_need - v_took);
                IF v_take > 0 THEN
                    UPDATE points_lots
                       SET remaining = remaining - v_take,
                           status = CASE WHEN remaining - v_take = 0 THEN 'consumed' ELSE status END
                     WHERE id = v_other.id;
                    v_alloc_lots := v_alloc_lots || v_other.id;
                    v_alloc_points := v_alloc_points || v_take;
                    v_took := v_took + v_take;
                END IF;
            END LOOP;
            v_moved := v_moved + v_took;
            v_shortfall := v_shortfall + (v_need - v_took);
            v_types := v_types || ARRAY['available', 'source'];
            v_names := v_names || ARRAY[v_orig.member_key, v_lot.source];
            v_amounts := v_amounts || ARRAY[-v_took, v_took];
            UPDATE points_wallets SET available = available - v_took WHERE member_key = v_orig.member_key;
        END LOOP;

        INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo,
                                         created_at)
        VALUES ('reverse', v_first, p_reference, NULL, v_moved, v_shortfall, p_actor, p_memo, p_now)
        RETURNING id INTO v_txn;
        -- the legs merged per account, in the order each account first appears; zero sums dropped
        WITH legs AS (
            SELECT leg.t, leg.n, sum(leg.a) AS a, min(leg.i) AS i
              FROM unnest(v_types, v_names, v_amounts) WITH ORDINALITY AS leg(t, n, a, i)
             GROUP BY leg.t, leg.n
        ), written AS (
            INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)
            SELECT v_txn, legs.t, legs.n, legs.a FROM legs WHERE legs.a <> 0 ORDER BY legs.i
        )
        SELECT COALESCE(jsonb_agg(jsonb_build_object('account', legs.t || ':' || legs.n, 'amount', legs.a)
                                  ORDER BY legs.i), CAST('[]' AS jsonb))
          INTO v_entries
          FROM legs WHERE legs.a <> 0;
        INSERT INTO lot_allocations (transaction_id, lot_id, points)
        SELECT v_txn, x.lot, x.points
          FROM unnest(v_alloc_lots, v_alloc_points) WITH ORDINALITY AS x(lot, points, i)
         ORDER BY x.i;
        INSERT INTO points_lots (member_key, transaction_id, source, points, remaining, status, earned_at,
                                 pending_until, expires_at)
        SELECT x.m, v_txn, x.s, x.p, x.p, 'active', p_now, NULL, x.e
          FROM unnest(v_new_members, v_new_sources, v_new_points, v_new_expiry) WITH ORDINALITY AS x(m, s, p, e, i)
         ORDER BY x.i;
        INSERT INTO ledger_reversals (original_id, reversal_id)
        SELECT o, v_txn FROM unnest(v_originals) AS o ORDER BY o;
        response := CAST(jsonb_build_object('reversal', CAST(p_response AS jsonb) || jsonb_build_object(
            'id', v_txn, 'member_key', v_first, 'points', v_moved, 'shortfall', v_shortfall, 'entries', v_entries
        )) AS json);
    END IF;

    IF p_scope IS NOT NULL THEN
        UPDATE idempotency_records SET response = patron_ledger_reverse.response WHERE id = v_claim;
    END IF;
    RETURN NEXT;
END $$
"""

_SIGNATURES = (
    "patron_ledger_reverse(text, text, text, json, text, text, text, timestamptz)",
    "patron_ledger_settle(text, timestamptz)",
)


_AUTOMATIC_USE = "coupon_id IS NULL AND status <> 'released'"


def upgrade() -> None:
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.alter_column("coupon_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(
            "uq_promotion_redemptions_automatic_use",
            ["template_id", "order_reference"],
            unique=True,
            sqlite_where=sa.text(_AUTOMATIC_USE),
            postgresql_where=sa.text(_AUTOMATIC_USE),
        )
        batch_op.create_index("ix_promotion_redemptions_order_reference", ["order_reference"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    for statement in (_SETTLE, _REVERSE):  # driver-level: the bodies hold colons that are not bind parameters
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in _SIGNATURES:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DELETE FROM promotion_redemptions WHERE coupon_id IS NULL")  # uses of automatic promotions
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_redemptions_order_reference")
        batch_op.drop_index("uq_promotion_redemptions_automatic_use")
        batch_op.alter_column("coupon_id", existing_type=sa.Integer(), nullable=False)
