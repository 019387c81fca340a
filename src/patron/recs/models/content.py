r"""Content-based recommendations from item attributes, for cold start.

Each item is a sparse vector of four blocks, each L2-normalized and scaled by
the square root of its weight, so that the dot product of two items is the
weighted sum of the blocks' cosines:

- title: TF-IDF of character n-grams (``char_wb`` 2-3 by default: works for
  English words and for Chinese titles, which have no spaces between words);
- category and brand: one-hot;
- price band: one-hot of the price's quantile band within its category.

A user's profile is the weighted mean of their history's item vectors (the
history weights), and an item's score is its cosine with the profile. Items
nobody interacted with have vectors like any other, so they are
recommendable from the first day (cold start); a tiny popularity term, far
below any content difference, only orders items the profile cannot tell apart.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.preprocessing import normalize  # type: ignore[import-untyped]

from patron.recs.base import FloatArray, IntArray, Interactions, ItemCatalog, Recommender, register

__all__ = ["ContentBased", "item_features"]

#: weight of the popularity tie-break relative to a cosine of 1
TIE_BREAK = 1e-4


def _one_hot(values: np.ndarray[Any, Any]) -> sp.csr_matrix:
    """One column per distinct non-empty value; empty or missing values get an empty row."""
    text = np.asarray(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values])
    labels, codes = np.unique(text, return_inverse=True)
    present = text != ""
    rows = np.flatnonzero(present)
    cols = codes.ravel()[present]
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(text), len(labels)))


def _price_bands(category: np.ndarray[Any, Any], price: np.ndarray[Any, Any], bands: int) -> np.ndarray[Any, Any]:
    """The label "<category>|<band>" of each priced item: its quantile band among its category's prices."""
    labels = np.full(len(price), "", dtype=object)
    cats = np.asarray([str(c) for c in category])
    p = np.asarray(price, dtype=np.float64)
    for cat in np.unique(cats):
        rows = np.flatnonzero((cats == cat) & np.isfinite(p))
        if len(rows) == 0:
            continue
        edges = np.quantile(p[rows], np.linspace(0, 1, bands + 1)[1:-1])
        band = np.searchsorted(edges, p[rows], side="left")  # bins closed on the right, as pandas qcut
        labels[rows] = [f"{cat}|{b}" for b in band.tolist()]
    return labels


def item_features(
    items: ItemCatalog,
    *,
    analyzer: str = "char_wb",
    ngram_range: tuple[int, int] = (2, 3),
    weights: dict[str, float],
    price_bands: int = 4,
) -> sp.csr_matrix:
    """The items x features matrix (rows unit length): weighted title, category, brand and price blocks."""
    titles = ["" if t is None else str(t) for t in items.title.tolist()]
    blocks: list[tuple[str, sp.csr_matrix]] = []
    if any(t.strip() for t in titles):
        vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, dtype=np.float32)
        blocks.append(("title", vectorizer.fit_transform(titles)))
    blocks.append(("category", _one_hot(items.category)))
    blocks.append(("brand", _one_hot(items.brand)))
    blocks.append(("price", _one_hot(_price_bands(items.category, items.price, price_bands))))
    scaled = [
        normalize(sp.csr_matrix(block, dtype=np.float32)) * np.float32(np.sqrt(weights[name]))
        for name, block in blocks
        if weights[name] > 0
    ]
    if not scaled:
        return sp.csr_matrix((len(titles), 0), dtype=np.float32)
    return sp.csr_matrix(normalize(sp.hstack(scaled, format="csr")), dtype=np.float32)


@register
class ContentBased(Recommender):
    """Cosine between a history's profile and item attribute vectors; needs an :class:`ItemCatalog`.

    Parameters
    ----------
    title_weight, category_weight, brand_weight, price_weight : float
        Weights of the blocks (0 drops a block).
    analyzer : str
        The TF-IDF analyzer of titles: ``char_wb`` (default), ``char`` or ``word``.
    ngram_min, ngram_max : int
        The n-gram lengths of the title analyzer.
    price_bands : int
        Quantile bands of price within each category.

    """

    name: ClassVar[str] = "content"

    def __init__(
        self,
        *,
        title_weight: float = 1.0,
        category_weight: float = 0.5,
        brand_weight: float = 0.3,
        price_weight: float = 0.2,
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 3,
        price_bands: int = 4,
    ) -> None:
        if analyzer not in ("char_wb", "char", "word"):
            raise ValueError(f"analyzer must be char_wb, char or word, not {analyzer!r}")
        if not 1 <= ngram_min <= ngram_max:
            raise ValueError("need 1 <= ngram_min <= ngram_max")
        if min(title_weight, category_weight, brand_weight, price_weight) < 0:
            raise ValueError("block weights must not be negative")
        super().__init__(
            title_weight=float(title_weight),
            category_weight=float(category_weight),
            brand_weight=float(brand_weight),
            price_weight=float(price_weight),
            analyzer=analyzer,
            ngram_min=int(ngram_min),
            ngram_max=int(ngram_max),
            price_bands=int(price_bands),
        )
        self.features: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity: FloatArray = np.zeros(0, dtype=np.float32)

    def _fit(self, data: Interactions, items: ItemCatalog | None) -> None:
        if items is None:
            raise ValueError("the content model needs an ItemCatalog (titles, categories, brands, prices)")
        p = self.params
        self.features = item_features(
            items,
            analyzer=p["analyzer"],
            ngram_range=(p["ngram_min"], p["ngram_max"]),
            weights={
                "title": p["title_weight"],
                "category": p["category_weight"],
                "brand": p["brand_weight"],
                "price": p["price_weight"],
            },
            price_bands=p["price_bands"],
        )
        binary = sp.csr_matrix(data.matrix, copy=True)
        binary.data[:] = 1.0
        counts = np.asarray(binary.sum(axis=0), dtype=np.float32).ravel()
        self.popularity = (counts / max(float(counts.max(initial=0.0)), 1.0)).astype(np.float32)

    def profiles(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Unit-length profiles (rows x features): the history-weighted sum of item vectors."""
        weighted = sp.csr_matrix(history, dtype=np.float32) @ self.features
        return sp.csr_matrix(normalize(weighted), dtype=np.float32)

    def scores(self, history: sp.csr_matrix, users: IntArray | None = None) -> FloatArray:
        """Cosine of each item with the history's profile, plus a tiny popularity tie-break."""
        sims = np.asarray((self.profiles(history) @ self.features.T).todense(), dtype=np.float32)
        return sims + TIE_BREAK * self.popularity[None, :]

    def item_vectors(self) -> sp.csr_matrix:
        """The items' attribute vectors."""
        return self.features

    def _state(self) -> dict[str, np.ndarray[Any, Any] | sp.spmatrix]:
        return {"features": self.features, "popularity": self.popularity}

    def _restore(self, state: dict[str, np.ndarray[Any, Any] | sp.csr_matrix]) -> None:
        self.features = sp.csr_matrix(state["features"], dtype=np.float32)
        self.popularity = np.asarray(state["popularity"], dtype=np.float32)
