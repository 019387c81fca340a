"""The demo shop's recommendations and loyalty program: placed, earning, and set up only once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from patron.analytics.build import build_profiles
from patron.demo import generate_shop
from patron.demo.activation import seed_activation
from patron.ingest.service import import_batch
from patron.loyalty.ledger_models import PointsWallet
from patron.loyalty.tiers import list_tiers
from patron.recs import registry
from patron.recs.rules import RecRequest
from patron.recs.serving import RecEngine
from patron.runtime import Runtime
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(make_settings(tmp_path_factory.mktemp("demo-activation")))
    rt.store.migrate()
    import_batch(rt, "demo", "demo-400-5", lambda: generate_shop(400, 5))
    build_profiles(rt, with_models=False)
    yield rt
    rt.close()


def test_seeding_places_models_sets_up_the_program_and_earns_points(shop: Runtime) -> None:
    first = seed_activation(shop)
    placements = {p.name: p for p in registry.list_placements(shop.store)}
    assert set(placements) == {"home", "pdp", "cart"}
    assert [p.kind for p in (placements["home"], placements["pdp"], placements["cart"])] == [
        "member",
        "similar",
        "bought_together",
    ]
    version = registry.get_version(shop.store, placements["home"].variants[0].version_id)
    assert version.status == "ready" and version.directory
    engine = RecEngine.open(Path(shop.settings.artefact_dir) / "recs" / Path(version.directory).name)
    member = str(engine.model.user_ids[0])
    listed = engine.for_member(member, RecRequest(k=5))
    assert len(listed.items) == 5

    with shop.store.session() as session:
        assert [t.code for t in list_tiers(session)] == ["silver", "gold", "diamond"]
        wallets = session.scalar(select(func.count()).select_from(PointsWallet))
        points = session.scalar(select(func.sum(PointsWallet.available + PointsWallet.pending)))
    assert first["loyalty"]["orders"] > 0
    assert wallets and wallets > 0 and points and points > 0

    again = seed_activation(shop)
    assert again == {"recs": [], "loyalty": {"orders": 0}}
