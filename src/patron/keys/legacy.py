"""The keys of data directories made before envelope encryption, and how they are adopted.

Before, every key was derived (HKDF-SHA256) from the one master key: the field
key that sealed vault entries and secrets, the blind-index key and the audit
chain key. When such a directory first needs its system keys, each purpose
that older data depends on adopts its derived key (wrapped like any other
system key from then on); purposes with no older data get random keys. Which
master key the older data was made under is found by trying the keyring's keys
on a sample of it (a sealed field or secret, the first link of the audit chain).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, column, select, table

from patron.audit.chain import GENESIS, chain_key, entry_digest
from patron.audit.models import AuditEntry
from patron.keys.master import MasterKey, MasterKeyring

__all__ = ["SystemPurpose", "derived_key", "legacy_master", "legacy_uses", "open_v1"]

log = logging.getLogger(__name__)

SystemPurpose = Literal["blind-index", "audit-chain", "secrets"]

_INFO: dict[SystemPurpose, bytes] = {
    "secrets": b"patron-vault-v1",
    "blind-index": b"patron-blind-index-v1",
}

_vault = table("member_vault", column("member_key"), column("key_version"), column("email"), column("name"))
_operators = table("operators", column("id"), column("mfa_secret"))
_rules = table("alert_rules", column("id"), column("webhook_secret"))
_head = table("audit_chain_head", column("id"), column("seq"))
_audit = AuditEntry.__table__


def derived_key(master: bytes, purpose: SystemPurpose) -> bytes:
    """The key older versions derived from ``master`` for ``purpose``."""
    if purpose == "audit-chain":
        return chain_key(master)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO[purpose]).derive(master)


def open_v1(key: bytes, owner: str, field: str, sealed: bytes) -> bytes | None:
    """Open a format-1 ciphertext (version byte 1, nonce, AES-GCM), or None if it does not open."""
    if sealed[:1] != b"\x01":
        return None
    try:
        return AESGCM(key).decrypt(sealed[1:13], sealed[13:], f"{owner}:{field}".encode())
    except InvalidTag:
        return None


def legacy_uses(conn: Connection) -> set[SystemPurpose]:
    """The purposes whose older data exists in the store."""
    uses: set[SystemPurpose] = set()
    if conn.execute(select(_vault.c.member_key).limit(1)).first() is not None:
        uses.add("blind-index")
    if (
        conn.execute(select(_vault.c.member_key).where(_vault.c.key_version == 1).limit(1)).first() is not None
        or conn.execute(select(_operators.c.id).where(_operators.c.mfa_secret.is_not(None)).limit(1)).first()
        or conn.execute(select(_rules.c.id).limit(1)).first() is not None
    ):
        uses.add("secrets")
    if (conn.execute(select(_head.c.seq).where(_head.c.id == 1)).scalar() or 0) > 0:
        uses.add("audit-chain")
    return uses


def _sealed_samples(conn: Connection) -> Iterator[tuple[str, str, bytes]]:
    """(owner, field, ciphertext) of one older vault entry, TOTP secret and webhook secret."""
    row = conn.execute(
        select(_vault.c.member_key, _vault.c.email, _vault.c.name).where(_vault.c.key_version == 1).limit(1)
    ).first()
    if row is not None and (row.email or row.name):
        yield (row.member_key, "email", bytes(row.email)) if row.email else (row.member_key, "name", bytes(row.name))
    # Owners as patron.auth.service and patron.alerts.delivery name them.
    op = conn.execute(select(_operators.c.id, _operators.c.mfa_secret).where(_operators.c.mfa_secret.is_not(None)))
    if (found := op.first()) is not None:
        yield f"operator-{found.id}", "totp", bytes(found.mfa_secret)
    rule = conn.execute(select(_rules.c.id, _rules.c.webhook_secret).limit(1)).first()
    if rule is not None:
        yield f"alert_rule:{rule.id}", "webhook_secret", bytes(rule.webhook_secret)


def _matches(conn: Connection, candidate: MasterKey) -> bool:
    secrets_key = derived_key(candidate.secret, "secrets")
    if any(open_v1(secrets_key, owner, field, sealed) is not None for owner, field, sealed in _sealed_samples(conn)):
        return True
    first = conn.execute(select(_audit).where(_audit.c.seq == 1)).mappings().first()
    if first is not None:
        return bool(entry_digest(chain_key(candidate.secret), GENESIS, dict(first)) == first["entry_hash"])
    return False


def legacy_master(conn: Connection, keyring: MasterKeyring) -> MasterKey:
    """The master key the older data was made under (the active key if no sample tells)."""
    for candidate in keyring.held():
        if _matches(conn, candidate):
            return candidate
    log.warning("no master key in the keyring opens the older data; adopting keys derived from the active key")
    return keyring.active()
