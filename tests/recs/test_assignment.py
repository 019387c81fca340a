"""Deterministic bucketing of units into a placement's variants."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from patron.recs.assignment import BUCKETS, VariantShare, assign, bucket_of, validate_shares

IDS = [f"m{i:016x}" for i in range(100_000)]
HALVES = [VariantShare("control", 5_000), VariantShare("treatment", 5_000)]


def test_buckets_are_uniform_over_100k_ids_by_chi_square() -> None:
    buckets = np.array([bucket_of("salt-1", "home", unit) for unit in IDS])
    counts = np.bincount(buckets // 100, minlength=100)  # 100 cells of 100 buckets

    result = stats.chisquare(counts)

    assert buckets.min() >= 0 and buckets.max() < BUCKETS
    assert result.pvalue > 0.001, result


def test_a_50_50_split_is_close_to_half_and_independent_of_the_salt_of_another_placement() -> None:
    home = [assign("s", "home", unit, HALVES) for unit in IDS[:20_000]]
    cart = [assign("s", "cart", unit, HALVES) for unit in IDS[:20_000]]

    share = home.count("control") / len(home)
    # a 99.9 % binomial interval around one half
    assert abs(share - 0.5) < 3.3 * (0.25 / len(home)) ** 0.5
    agreement = sum(a == b for a, b in zip(home, cart, strict=True)) / len(home)
    assert abs(agreement - 0.5) < 0.03  # placements bucket independently


def test_the_bucket_is_blake2b_of_salt_placement_and_unit() -> None:
    digest = hashlib.blake2b(b"salt\x1fhome\x1fm1", digest_size=8).digest()

    assert bucket_of("salt", "home", "m1") == int.from_bytes(digest, "big") % 10_000


@given(salt=st.text(max_size=20), unit=st.text(max_size=40), first=st.integers(0, 10_000))
def test_assignment_is_stable_and_always_a_configured_variant(salt: str, unit: str, first: int) -> None:
    variants = [VariantShare("a", first), VariantShare("b", 10_000 - first)]

    chosen = assign(salt, "home", unit, variants)

    assert chosen == assign(salt, "home", unit, variants)
    assert chosen in {"a", "b"}
    assert (chosen == "a") == (bucket_of(salt, "home", unit) < first)


def test_changing_shares_moves_only_the_units_whose_buckets_change_owner() -> None:
    units = IDS[:20_000]
    before = [assign("s", "home", u, HALVES) for u in units]
    after = [assign("s", "home", u, [VariantShare("control", 6_000), VariantShare("treatment", 4_000)]) for u in units]

    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]

    assert all(a == "treatment" and b == "control" for a, b in moved)
    assert abs(len(moved) / len(units) - 0.10) < 0.01


def test_adding_a_third_variant_at_the_end_takes_units_from_the_last_only() -> None:
    units = IDS[:10_000]
    before = [assign("s", "home", u, HALVES) for u in units]
    three = [VariantShare("control", 5_000), VariantShare("treatment", 2_500), VariantShare("new", 2_500)]
    after = [assign("s", "home", u, three) for u in units]

    assert all(b == a for a, b in zip(before, after, strict=True) if a == "control")


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([], "at least one"),
        ([VariantShare("a", 5_000), VariantShare("a", 5_000)], "unique"),
        ([VariantShare("a", -1), VariantShare("b", 10_001)], "0 to 10000"),
        ([VariantShare("a", 5_000), VariantShare("b", 4_000)], "sum to 10000"),
    ],
)
def test_invalid_shares_are_refused(variants: list[VariantShare], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_shares(variants)
