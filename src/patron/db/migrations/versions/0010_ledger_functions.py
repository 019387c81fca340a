"""points ledger: earn and spend as one database call on PostgreSQL

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22

Two PL/pgSQL functions do inside the database exactly what the Python ledger
does for an earn (or a positive adjustment) and a redemption (or a negative
adjustment), so each is one statement. With an idempotency scope they also
claim the key, replay a stored response and store the new one. They raise
SQLSTATE ``PT409`` when the key was used with another request and ``PT402``
when the member lacks the points; a reused reference is the unique violation
of ``natural_key``. On SQLite this migration does nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The idempotency claim shared by both functions: a new key is claimed (v_claim);
# a known key with the same request hash returns the stored response, else PT409.
_CLAIM = """
    IF p_scope IS NOT NULL THEN
        INSERT INTO idempotency_records (scope, key, request_hash, response, created_at)
        VALUES (p_scope, p_key, p_hash, CAST('{}' AS json), p_now)
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING id INTO v_claim;
        IF v_claim IS NULL THEN
            SELECT r.request_hash, r.response INTO v_hash, stored
              FROM idempotency_records r WHERE r.scope = p_scope AND r.key = p_key;
            IF v_hash <> p_hash THEN
                RAISE EXCEPTION 'idempotency key used with a different request' USING ERRCODE = 'PT409';
            END IF;
            txn_id := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
"""

_STORE = """
    IF p_scope IS NOT NULL THEN
        UPDATE idempotency_records
           SET response = CAST(jsonb_set(CAST(p_response AS jsonb), '{id}', to_jsonb(v_txn)) AS json)
         WHERE id = v_claim;
    END IF;
    txn_id := v_txn;
    stored := NULL;
    RETURN NEXT;
"""

_EARN = """
CREATE OR REPLACE FUNCTION patron_ledger_earn(
    p_scope text, p_key text, p_hash text, p_response json,
    p_kind text, p_member text, p_points bigint, p_from_type text, p_from_name text,
    p_reference text, p_natural_key text, p_actor text, p_memo text, p_now timestamptz,
    p_pending boolean, p_pending_until timestamptz, p_expires_at timestamptz, p_earned bigint
) RETURNS TABLE (txn_id bigint, stored json) LANGUAGE plpgsql AS $$
DECLARE
    v_claim integer;
    v_hash text;
    v_txn integer;
BEGIN
-- claim

    INSERT INTO points_wallets AS w (member_key, available, pending, lifetime_earned, lifetime_redeemed, updated_at)
    VALUES (p_member, CASE WHEN p_pending THEN 0 ELSE p_points END, CASE WHEN p_pending THEN p_points ELSE 0 END,
            p_earned, 0, p_now)
    ON CONFLICT (member_key) DO UPDATE
       SET available = w.available + EXCLUDED.available,
           pending = w.pending + EXCLUDED.pending,
           lifetime_earned = w.lifetime_earned + EXCLUDED.lifetime_earned,
           updated_at = EXCLUDED.updated_at;
    INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo, created_at)
    VALUES (p_kind, p_member, p_reference, p_natural_key, p_points, 0, p_actor, p_memo, p_now)
    RETURNING id INTO v_txn;
    INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)
    VALUES (v_txn, p_from_type, p_from_name, -p_points),
           (v_txn, CASE WHEN p_pending THEN 'pending' ELSE 'available' END, p_member, p_points);
    INSERT INTO points_lots (member_key, transaction_id, source, points, remaining, status, earned_at,
                             pending_until, expires_at)
    VALUES (p_member, v_txn, p_from_name, p_points, p_points, CASE WHEN p_pending THEN 'pending' ELSE 'active' END,
            p_now, CASE WHEN p_pending THEN p_pending_until END, p_expires_at);
-- store
END $$
""".replace("-- claim\n", _CLAIM).replace("-- store\n", _STORE)

_REDEEM = """
CREATE OR REPLACE FUNCTION patron_ledger_redeem(
    p_scope text, p_key text, p_hash text, p_response json,
    p_kind text, p_member text, p_points bigint, p_to_type text, p_to_name text,
    p_reference text, p_natural_key text, p_actor text, p_memo text, p_now timestamptz, p_redeemed bigint
) RETURNS TABLE (txn_id bigint, stored json) LANGUAGE plpgsql AS $$
DECLARE
    v_claim integer;
    v_hash text;
    v_txn integer;
    v_job integer;
    v_total bigint;
    v_ids integer[];
    v_left bigint;
    v_take bigint;
    v_lot record;
BEGIN
-- claim

    -- lock the wallet of the member (created if new)
    INSERT INTO points_wallets AS w (member_key, available, pending, lifetime_earned, lifetime_redeemed, updated_at)
    VALUES (p_member, 0, 0, 0, 0, p_now)
    ON CONFLICT (member_key) DO UPDATE SET updated_at = EXCLUDED.updated_at;

    -- settle: pending lots whose window ended become available
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

    -- settle: what remains of due active lots expires
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

    -- spend the earliest-expiring active lots first, then the oldest
    SELECT COALESCE(sum(l.remaining), 0) INTO v_total
      FROM points_lots l WHERE l.member_key = p_member AND l.status = 'active';
    IF v_total < p_points THEN
        RAISE EXCEPTION USING ERRCODE = 'PT402',
            MESSAGE = 'member ' || p_member || ' has ' || v_total || ' available points; ' || p_points || ' needed';
    END IF;
    INSERT INTO ledger_transactions (kind, member_key, reference, natural_key, points, shortfall, actor, memo, created_at)
    VALUES (p_kind, p_member, p_reference, p_natural_key, p_points, 0, p_actor, p_memo, p_now)
    RETURNING id INTO v_txn;
    INSERT INTO ledger_entries (transaction_id, account_type, account_name, amount)
    VALUES (v_txn, 'available', p_member, -p_points), (v_txn, p_to_type, p_to_name, p_points);
    v_left := p_points;
    FOR v_lot IN
        SELECT l.id, l.remaining FROM points_lots l
         WHERE l.member_key = p_member AND l.status = 'active'
         ORDER BY l.expires_at ASC NULLS LAST, l.id
    LOOP
        EXIT WHEN v_left = 0;
        v_take := LEAST(v_lot.remaining, v_left);
        UPDATE points_lots
           SET remaining = remaining - v_take,
               status = CASE WHEN remaining - v_take = 0 THEN 'consumed' ELSE status END
         WHERE id = v_lot.id;
        IF v_take <> 0 THEN
            INSERT INTO lot_allocations (transaction_id, lot_id, points) VALUES (v_txn, v_lot.id, v_take);
        END IF;
        v_left := v_left - v_take;
    END LOOP;
    UPDATE points_wallets
       SET available = available - p_points, lifetime_redeemed = lifetime_redeemed + p_redeemed
     WHERE member_key = p_member;
-- store
END $$
""".replace("-- claim\n", _CLAIM).replace("-- store\n", _STORE)

_SIGNATURES = (
    "patron_ledger_earn(text, text, text, json, text, text, bigint, text, text, text, text, text, text,"
    " timestamptz, boolean, timestamptz, timestamptz, bigint)",
    "patron_ledger_redeem(text, text, text, json, text, text, bigint, text, text, text, text, text, text,"
    " timestamptz, bigint)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    for statement in (_EARN, _REDEEM):  # driver-level: the bodies hold colons that are not bind parameters
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in _SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
