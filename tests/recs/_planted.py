"""Small data sets with planted structure for the association, content, session and hybrid tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from patron.recs.base import Interactions, ItemCatalog

# Distinct made-up words so that groups share no character n-grams by design.
GROUP_WORDS = ["zebra", "quokka", "fjord", "mitten", "bagel", "cactus", "yodel", "wombat"]
NOUNS = ["lamp", "mug", "scarf", "clock"]


@dataclass(frozen=True)
class PlantedShop:
    """Interactions over a catalog with cold items, and test histories with their held-out targets."""

    data: Interactions
    catalog: ItemCatalog
    histories: sp.csr_matrix
    targets: list[set[int]]
    partner: dict[str, str]
    cold: list[str]


def planted_shop(seed: int = 7) -> PlantedShop:
    """Groups of 4 warm items and 1 cold item with a group word in the title; warm item 0 of each group is
    bought together with warm item 1 of the opposite group.

    A test member of group g has bought items 0 and 2 of g; they next buy the partner of item 0 (only
    association rules can know it: it shares nothing with g's titles) and g's cold item (only content can
    know it: nobody bought it yet).
    """
    rng = np.random.default_rng(seed)
    groups = len(GROUP_WORDS)
    skus = [f"sku{n:03d}" for n in rng.permutation(groups * 5)]
    warm = {(g, j): skus[g * 5 + j] for g in range(groups) for j in range(4)}
    cold = [skus[g * 5 + 4] for g in range(groups)]
    titles, cats, brands, prices, ids = [], [], [], [], []
    for g, word in enumerate(GROUP_WORDS):
        for j in range(5):
            ids.append(skus[g * 5 + j])
            titles.append(f"{word} {NOUNS[j % 4]} {word}")
            cats.append(f"cat-{word}")
            brands.append(f"brand-{word}")
            prices.append(float(5 + j))
    catalog = ItemCatalog(
        np.asarray(ids),
        np.asarray(titles, dtype=object),
        np.asarray(cats, dtype=object),
        np.asarray(brands, dtype=object),
        np.asarray(prices),
    )
    partner = {warm[(g, 0)]: warm[((g + groups // 2) % groups, 1)] for g in range(groups)}
    users, items, times = [], [], []
    for u in range(240):
        g = u % groups
        a, b = warm[(g, 0)], partner[warm[(g, 0)]]
        users += [f"u{u:03d}"] * 2
        items += [a, b]
        times += [1000.0 * u] * 2
        for n, j in enumerate(rng.choice(4, size=2, replace=False)):
            users.append(f"u{u:03d}")
            items.append(warm[(int(rng.integers(groups)), int(j))])
            times.append(1000.0 * u + 100 + n)
    data = Interactions.from_events(users, items, times=times, item_ids=sorted(ids))
    index = data.item_index()
    rows, cols, targets = [], [], []
    for g in range(groups):
        for j in (0, 2):
            rows.append(g)
            cols.append(index[warm[(g, j)]])
        targets.append({index[partner[warm[(g, 0)]]], index[cold[g]]})
    histories = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(groups, data.n_items))
    return PlantedShop(data, catalog, histories, targets, partner, cold)


def recall_at(scores: np.ndarray, targets: list[set[int]], k: int, exclude: sp.csr_matrix) -> float:
    """Mean share of each row's targets found in its top ``k`` (excluded items removed)."""
    from patron.recs.base import top_k

    idx, _ = top_k(scores, k, exclude)
    return float(np.mean([len(set(row.tolist()) & t) / len(t) for row, t in zip(idx, targets, strict=True)]))
