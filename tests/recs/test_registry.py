"""Model versions and placements: variants, shares, history and rollback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.recs.registry import (
    VariantIn,
    activate,
    get_placement,
    get_version,
    list_placements,
    list_versions,
    placement_history,
    register_version,
    rollback,
    set_variants,
)
from patron.runtime import Runtime


def _version(runtime: Runtime, tmp_path: Path, model: str = "popularity") -> str:
    directory = tmp_path / f"{model}-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    manifest = {"as_of": "2011-12-09T12:50:00+00:00", "metrics": {"ndcg@10": 0.12}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return register_version(runtime.store, directory, model, {"k": 1}, "test").id


def test_a_registered_version_is_ready_with_its_manifest_metrics(runtime: Runtime, tmp_path: Path) -> None:
    version_id = _version(runtime, tmp_path)

    version = get_version(runtime.store, version_id)

    assert version.status == "ready"
    assert version.metrics == {"ndcg@10": 0.12}
    assert version.as_of is not None and version.as_of.isoformat() == "2011-12-09T12:50:00+00:00"
    assert [v.id for v in list_versions(runtime.store)] == [version_id]
    with pytest.raises(NotFoundError):
        get_version(runtime.store, "nope")


def test_activate_creates_a_placement_serving_one_version(runtime: Runtime, tmp_path: Path) -> None:
    version_id = _version(runtime, tmp_path)

    placement = activate(runtime.store, "home", version_id, "test", kind="member")

    assert placement.kind == "member" and placement.revision == 1
    assert placement.variants == [VariantIn(name="main", version_id=version_id, share_bp=10_000)]
    assert len(placement.salt) == 16
    assert [p.name for p in list_placements(runtime.store)] == ["home"]


def test_shares_must_sum_to_10000_and_versions_must_exist(runtime: Runtime, tmp_path: Path) -> None:
    a = _version(runtime, tmp_path)
    activate(runtime.store, "home", a, "test", kind="member")

    with pytest.raises(ValidationError, match="sum to 10000") as short:
        set_variants(runtime.store, "home", [VariantIn(name="a", version_id=a, share_bp=9_999)], "test")
    with pytest.raises(ValidationError) as missing:
        set_variants(runtime.store, "home", [VariantIn(name="a", version_id="ghost", share_bp=10_000)], "test")
    with pytest.raises(ValidationError, match="give its kind"):
        activate(runtime.store, "cart", a, "test")
    with pytest.raises(ConflictError, match="serves member"):
        activate(runtime.store, "home", a, "test", kind="similar")

    assert short.value.field == "variants"
    assert missing.value.field == "variants.0.version_id"
    assert get_placement(runtime.store, "home").revision == 1  # nothing half-applied


def test_rollback_restores_the_previous_configuration_and_walks_back(runtime: Runtime, tmp_path: Path) -> None:
    a, b, c = (_version(runtime, tmp_path, m) for m in ("popularity", "itemknn", "ease"))
    first = activate(runtime.store, "home", a, "ana", kind="member").variants
    split = [
        VariantIn(name="control", version_id=a, share_bp=5_000),
        VariantIn(name="ease", version_id=b, share_bp=5_000),
    ]
    second = set_variants(runtime.store, "home", split, "ana").variants
    activate(runtime.store, "home", c, "ben")

    once = rollback(runtime.store, "home", "carl")
    twice = rollback(runtime.store, "home", "carl")

    assert once.variants == second
    assert twice.variants == first and twice.revision == 5
    with pytest.raises(ConflictError, match="no earlier configuration"):
        rollback(runtime.store, "home", "carl")
    history = placement_history(runtime.store, "home")
    assert [(h.revision, h.action, h.based_on, h.actor) for h in history] == [
        (5, "rollback", 1, "carl"),
        (4, "rollback", 2, "carl"),
        (3, "update", None, "ben"),
        (2, "update", None, "ana"),
        (1, "create", None, "ana"),
    ]
    assert history[3].variants == split


def test_unknown_placements_are_not_found(runtime: Runtime) -> None:
    for call in (get_placement, placement_history):
        with pytest.raises(NotFoundError):
            call(runtime.store, "nowhere")
    with pytest.raises(NotFoundError):
        rollback(runtime.store, "nowhere", "x")
