"""Deterministic A/B assignment of units (members or sessions) to a placement's variants.

A unit's bucket is ``blake2b(salt | placement | unit_id) mod 10,000``; the
variants own consecutive ranges of buckets in their configured order, each as
wide as its share in basis points. The same unit always lands in the same
variant while the shares stay; changing shares moves only the units whose
bucket changes owner (a 50/50 → 60/40 change moves 10 % of units).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BUCKETS", "VariantShare", "assign", "bucket_of", "validate_shares"]

BUCKETS = 10_000


@dataclass(frozen=True)
class VariantShare:
    """A variant's name and its share of traffic in basis points."""

    name: str
    share_bp: int


def bucket_of(salt: str, placement: str, unit_id: str) -> int:
    """The unit's bucket in ``0..9999`` for this placement (stable across processes and machines)."""
    digest = hashlib.blake2b(f"{salt}\x1f{placement}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def validate_shares(variants: Sequence[VariantShare]) -> None:
    """Refuse an empty list, repeated names, negative shares, or shares not summing to 10,000."""
    if not variants:
        raise ValueError("a placement needs at least one variant")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError("variant names must be unique")
    if any(v.share_bp < 0 or v.share_bp > BUCKETS for v in variants):
        raise ValueError(f"each share must be 0 to {BUCKETS} basis points")
    total = sum(v.share_bp for v in variants)
    if total != BUCKETS:
        raise ValueError(f"shares must sum to {BUCKETS} basis points, not {total}")


def assign(salt: str, placement: str, unit_id: str, variants: Sequence[VariantShare]) -> str:
    """The name of the variant that serves ``unit_id`` (variants in their configured order)."""
    bucket = bucket_of(salt, placement, unit_id)
    upper = 0
    for variant in variants:
        upper += variant.share_bp
        if bucket < upper:
            return variant.name
    raise ValueError(f"shares sum to {upper}, not {BUCKETS}")
