"""The candidate index of factor models and serving through it: recall, full pages under rules, persistence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from patron.recs.base import Interactions, ItemCatalog
from patron.recs.candidates import CALIBRATION_RECALL, INDEX_FILE, INDEX_MIN_ITEMS, CandidateIndex
from patron.recs.interactions import InteractionConfig
from patron.recs.models.mf import Als
from patron.recs.rules import ItemFacts, RecRequest, apply_rules, compile_rules
from patron.recs.serving import RecEngine, RecList
from patron.recs.training import write_version

pytestmark = pytest.mark.slow

N_CATEGORIES = 100


def _shop(n_items: int, n_members: int, seed: int) -> tuple[Interactions, Interactions, ItemFacts]:
    """Members who each like two categories (70 % of their interactions) and otherwise follow popularity."""
    rng = np.random.default_rng(seed)
    item_ids = np.asarray([f"i{n:06d}" for n in range(n_items)])
    member_ids = np.asarray([f"m{n:05d}" for n in range(n_members)])
    category = rng.integers(0, N_CATEGORIES, n_items)
    popularity = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.8)
    taste = rng.integers(0, N_CATEGORIES, (n_members, 2))
    users = np.repeat(np.arange(n_members), rng.poisson(12, n_members) + 1)
    liked = taste[users, rng.integers(0, 2, len(users))]
    items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum())
    from_taste = rng.random(len(users)) < 0.7
    for c in range(N_CATEGORIES):
        rows = np.flatnonzero(from_taste & (liked == c))
        members = np.flatnonzero(category == c)
        p = popularity[members] / popularity[members].sum()
        items[rows] = rng.choice(members, size=len(rows), p=p)
    weights = rng.choice([1.0, 3.0, 4.0], size=len(users), p=[0.6, 0.2, 0.2])
    data = Interactions.from_indices(member_ids, item_ids, users, items, weights)
    bought = weights == 4.0
    purchases = Interactions.from_indices(member_ids, item_ids, users[bought], items[bought], np.ones(bought.sum()))
    catalog = ItemCatalog(
        item_ids,
        np.asarray([f"item {n}" for n in range(n_items)], dtype=object),
        np.asarray([f"cat{c:03d}" for c in category], dtype=object),
        np.asarray([""] * n_items, dtype=object),
        np.round(rng.lognormal(3.0, 1.0, n_items), 2),
    )
    return data, purchases, ItemFacts.from_catalog(catalog, in_stock=rng.random(n_items) > 0.02)


def _version(directory: Path, n_items: int, n_members: int) -> Path:
    data, purchases, facts = _shop(n_items, n_members, seed=5)
    model = Als(factors=16, iterations=6, threads=1).fit(data)
    popular = np.argsort(-np.asarray(data.matrix.sum(axis=0)).ravel())[:200]
    trending = pa.table(
        {
            "segment": [""] * len(popular),
            "item_id": data.item_ids[popular].tolist(),
            "score": np.arange(len(popular), 0, -1, dtype=np.float64),
        }
    )
    directory.mkdir()
    write_version(directory, model, facts, purchases, {}, trending, InteractionConfig())
    (directory / "manifest.json").write_text(json.dumps({"model": "als"}))
    return directory


@pytest.fixture(scope="module")
def large_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version at the index threshold: its training stored a candidate index."""
    return _version(tmp_path_factory.mktemp("large") / "version", INDEX_MIN_ITEMS, 3_000)


@pytest.fixture(scope="module")
def indexed(large_version: Path) -> RecEngine:
    return RecEngine.open(large_version)


@pytest.fixture(scope="module")
def exact(large_version: Path) -> RecEngine:
    return RecEngine.open(large_version, index_min_items=None)


def ids(rec: RecList) -> list[str]:
    return [item.item_id for item in rec.items]


def exact_page(engine: RecEngine, member: str, request: RecRequest) -> list[str]:
    """The page by brute force: every item scored, the rules on every item, sorted by score then index."""
    history, changed = engine.history(member)
    user = -1 if changed else engine.user_index.get(member, -1)
    scores = engine.model.scores(history, np.asarray([user]))[0]
    bought = engine.purchased(member)
    rules = compile_rules(engine.facts, request, engine.item_index, purchased=bought, repeat=engine.repeat)
    allowed = np.flatnonzero(apply_rules(engine.facts, rules) & np.isfinite(scores))
    ranked = allowed[np.lexsort((allowed, -scores[allowed]))]
    start = request.k * (request.page - 1)
    return [str(i) for i in engine.facts.item_ids[ranked[start : start + request.k]].tolist()]


def _factors(rng: np.random.Generator, n: int, f: int) -> np.ndarray:
    """Factors with popularity-like norms: a few long vectors, many short ones."""
    return (rng.standard_normal((n, f)) * rng.lognormal(-3.0, 0.8, (n, 1))).astype(np.float32)


@pytest.mark.parametrize("with_bias", [False, True])
def test_index_finds_the_exact_top_10_of_held_out_users(with_bias: bool) -> None:
    rng = np.random.default_rng(11)
    items = _factors(rng, 20_000, 16)
    bias = (rng.standard_normal(20_000) * 0.02).astype(np.float32) if with_bias else None
    taste = rng.standard_normal((40, 16)).astype(np.float32)  # users lean to one of 40 tastes
    users = (taste[rng.integers(0, 40, 2_000)] + 0.5 * rng.standard_normal((2_000, 16))).astype(np.float32)
    index = CandidateIndex.build(items, bias, users[:1_000])
    assert index.header.recall is not None and index.header.recall >= CALIBRATION_RECALL
    assert index.header.bias is with_bias
    held_out = users[1_000:]
    scores = held_out @ items.T + (0.0 if bias is None else bias[None, :])
    hits = 0
    for row, vector in enumerate(held_out):
        found = index.search(vector, 100)
        best = found[np.lexsort((found, -scores[row, found]))][:10]
        hits += len(set(best.tolist()) & set(np.argsort(-scores[row])[:10].tolist()))
    assert hits / (10 * len(held_out)) >= 0.95


def test_training_stores_the_index_and_the_engine_serves_through_it(indexed: RecEngine, exact: RecEngine) -> None:
    assert (indexed.version_dir / INDEX_FILE).is_file()
    assert indexed.index is not None and indexed.index.header.items == INDEX_MIN_ITEMS
    assert exact.index is None
    members = indexed.model.user_ids[::10].tolist()
    overlap = []
    for member in members:
        fast, slow = indexed.for_member(member), exact.for_member(member)
        assert len(fast.items) == 10 and fast.has_more and fast.source == "personalized"
        overlap.append(len(set(ids(fast)) & set(ids(slow))) / 10)
        truth = {item.item_id: item.score for item in slow.items}
        for item in fast.items:  # candidates are scored exactly
            if item.item_id in truth:
                assert item.score == pytest.approx(truth[item.item_id], rel=1e-5, abs=1e-6)
    assert np.mean(overlap) >= 0.95


def test_restrictive_requests_are_served_exactly(indexed: RecEngine, exact: RecEngine) -> None:
    prices = np.sort(indexed.facts.price)
    requests = [
        RecRequest(price_max=float(prices[200])),  # 1 % of the catalogue
        RecRequest(price_min=float(prices[-150]), k=5, page=2),
        RecRequest(categories=["cat007"]),
        RecRequest(whitelist=indexed.facts.item_ids[:300].tolist()),
    ]
    for request in requests:
        for member in indexed.model.user_ids[:40].tolist():
            fast = indexed.for_member(member, request)
            assert ids(fast) == ids(exact.for_member(member, request)) == exact_page(indexed, member, request)
            assert len(fast.items) == request.k


def test_pages_stay_full_when_the_rules_remove_most_candidates(large_version: Path) -> None:
    """99 % out of stock: the index's candidates rarely pass, so the engine widens, then scores every item."""
    indexed, exact = RecEngine.open(large_version), RecEngine.open(large_version, index_min_items=None)
    keep = set(range(0, INDEX_MIN_ITEMS, 100))
    for engine in (indexed, exact):
        for col, item in enumerate(engine.facts.item_ids.tolist()):
            if col not in keep:
                engine.set_availability(item, in_stock=False)
    for member in indexed.model.user_ids[:30].tolist():
        for request in (RecRequest(), RecRequest(k=20, page=2), RecRequest(diversity=0.5)):
            fast = indexed.for_member(member, request)
            assert ids(fast) == ids(exact.for_member(member, request))
            assert len(fast.items) == request.k
            assert all(indexed.item_index[i] in keep for i in ids(fast))


def test_feedback_sessions_and_diversity_through_the_index(large_version: Path) -> None:
    indexed, exact = RecEngine.open(large_version), RecEngine.open(large_version, index_min_items=None)
    other = indexed.facts.item_ids[indexed.facts.category == indexed.facts.category_codes(["cat042"])[0]][:5]
    overlap = []
    for member in indexed.model.user_ids[:50].tolist():
        before = ids(indexed.for_member(member))
        for engine in (indexed, exact):
            for item in other.tolist():
                engine.with_feedback(member, item, "cart")
        after = indexed.for_member(member)
        assert ids(after) != before and len(after.items) == 10
        overlap.append(len(set(ids(after)) & set(ids(exact.for_member(member)))) / 10)
        diverse = indexed.for_member(member, RecRequest(diversity=0.3))
        assert len(diverse.items) == 10 and diverse.has_more
    assert np.mean(overlap) >= 0.95
    session = ids(indexed.for_session(other.tolist()))
    assert len(session) == 10 and not set(session) & set(other.tolist())
    assert len(set(session) & set(ids(exact.for_session(other.tolist())))) >= 9


def test_below_the_threshold_every_item_is_scored(tmp_path: Path) -> None:
    engine = RecEngine.open(_version(tmp_path / "small", 2_000, 600))
    assert engine.index is None
    requests = [RecRequest(), RecRequest(k=7, page=3), RecRequest(price_max=20.0, exclude_categories=["cat001"])]
    for member in engine.model.user_ids[:60].tolist():
        for request in requests:
            assert ids(engine.for_member(member, request)) == exact_page(engine, member, request)


def test_trending_pages_follow_the_list_ranked_at_load(exact: RecEngine) -> None:
    trend = exact.trending[""]
    every = np.arange(len(trend))
    for request in (
        RecRequest(),
        RecRequest(k=7, page=3),
        RecRequest(price_max=15.0, exclude_categories=["cat003"]),
        RecRequest(whitelist=exact.facts.item_ids[::97].tolist(), k=20),
    ):
        page = exact.for_member("a stranger", request)
        assert page.source == "trending"
        rules = compile_rules(exact.facts, request, exact.item_index)
        allowed = every[apply_rules(exact.facts, rules)]
        ranked = allowed[np.lexsort((allowed, -trend[allowed]))]
        start = request.k * (request.page - 1)
        assert ids(page) == exact.facts.item_ids[ranked[start : start + request.k]].tolist()
        assert page.has_more == (len(ranked) > start + request.k)


def test_a_saved_index_serves_like_one_built_at_load(large_version: Path, tmp_path: Path) -> None:
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(large_version, rebuilt)
    for name in ("candidates.faiss", "candidates.json"):
        (rebuilt / name).unlink()
    stored, built = RecEngine.open(large_version), RecEngine.open(rebuilt)
    assert stored.index is not None and built.index is not None
    assert stored.index.header == built.index.header
    again = RecEngine.open(large_version)
    for member in stored.model.user_ids[:200].tolist():
        page = stored.for_member(member)
        assert page == built.for_member(member) == again.for_member(member)


def test_an_index_of_other_factors_is_not_used(large_version: Path) -> None:
    engine = RecEngine.open(large_version)
    assert isinstance(engine.model, Als)
    changed = engine.model.item_factors.copy()
    changed[0] += 1.0
    assert CandidateIndex.load(large_version, changed, None) is None
    assert (
        CandidateIndex.load(large_version, engine.model.item_factors, np.ones(INDEX_MIN_ITEMS, dtype=np.float32))
        is None
    )
