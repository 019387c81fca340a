"""The demo catalogue: products by category, brand, log-normal price and popularity.

Within a category, products are ranked by a random permutation and drawn
with Zipf weights ``1 / rank ** ZIPF_EXPONENT``: a few best-sellers and a
long tail, the same for every member.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.demo import vocab

__all__ = ["MIN_PRODUCTS", "ZIPF_EXPONENT", "Catalog", "catalog_size", "draw_catalog"]

MIN_PRODUCTS = 200
PRODUCTS_PER_SQRT_MEMBER = 2.0  # 2,000 products for 1M members
ZIPF_EXPONENT = 1.05
MIN_PER_CATEGORY = 10
_BRAND_WEIGHTS = 1.0 / np.arange(1, len(vocab.BRANDS[0]) + 1) ** 0.8


def catalog_size(members: int) -> int:
    """Return the number of products of a shop with ``members`` members."""
    return max(MIN_PRODUCTS, round(PRODUCTS_PER_SQRT_MEMBER * math.sqrt(members)))


@dataclass
class Catalog:
    """Products (index = product number - 1) and the popularity sampler.

    Sampling uses one alias table (Walker/Vose) per category; the tables of
    all categories sit side by side in ``_keep``/``_alias``, category ``k``
    owning the slots ``_offset[k]`` to ``_offset[k] + _size[k]``.
    """

    category: NDArray[np.int64]
    price_cents: NDArray[np.int64]
    frame: pl.DataFrame
    _offset: NDArray[np.int64]
    _size: NDArray[np.int64]
    _keep: NDArray[np.float64]
    _alias: NDArray[np.int64]
    _slot_product: NDArray[np.int64]

    @property
    def count(self) -> int:
        return int(self.category.size)

    def draw(self, rng: np.random.Generator, categories: NDArray[np.int64]) -> NDArray[np.int64]:
        """One product per entry of ``categories``, by within-category popularity."""
        slot = self._offset[categories] + (rng.random(categories.size) * self._size[categories]).astype(np.int64)
        slot = np.where(rng.random(categories.size) < self._keep[slot], slot, self._alias[slot])
        result: NDArray[np.int64] = self._slot_product[slot]
        return result


def _alias_table(weights: NDArray[np.float64], offset: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vose's alias table of ``weights``; aliases are slot numbers starting at ``offset``."""
    n = weights.size
    scaled = weights * n / weights.sum()
    keep = np.ones(n)
    alias = np.arange(offset, offset + n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        keep[low] = scaled[low]
        alias[low] = offset + high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return keep, alias


def _charm_price(raw: NDArray[np.float64]) -> NDArray[np.int64]:
    """Prices ending in 9 (159, 9.9) in cents."""
    tens = np.floor(raw / 10.0) * 10.0 + 9.0
    small = np.maximum(np.round(raw), 1.0) - 0.1
    return np.round(np.where(raw >= 20.0, tens, small) * 100.0).astype(np.int64)


def draw_catalog(rng: np.random.Generator, members: int) -> Catalog:
    """Draw the catalogue of a shop with ``members`` members."""
    total = catalog_size(members)
    shares = np.asarray(vocab.CATEGORY_PRODUCT_SHARE)
    per_category = np.maximum(MIN_PER_CATEGORY, np.round(shares / shares.sum() * total)).astype(np.int64)
    count = int(per_category.sum())
    category = np.repeat(np.arange(per_category.size), per_category)
    serial = np.arange(count) - np.repeat(np.cumsum(per_category) - per_category, per_category)
    rank = np.concatenate([rng.permutation(int(n)) for n in per_category])
    median, sigma = (np.asarray(v) for v in zip(*vocab.CATEGORY_PRICE, strict=True))
    raw_price = np.exp(np.log(median[category]) + sigma[category] * rng.standard_normal(count))
    price_cents = _charm_price(raw_price)
    brand_cum = np.cumsum(_BRAND_WEIGHTS / _BRAND_WEIGHTS.sum())
    brand_cum[-1] = 1.0
    brand = np.searchsorted(brand_cum, rng.random(count), side="right")
    noun = rng.integers(0, len(vocab.CATEGORY_NOUNS[0]), count)
    # Shuffle so that product numbers say nothing about category or popularity.
    order = rng.permutation(count)
    category, serial, rank = category[order], serial[order], rank[order]
    price_cents, brand, noun = price_cents[order], brand[order], noun[order]

    slot_product = np.lexsort((rank, category)).astype(np.int64)
    offset = np.cumsum(per_category) - per_category
    tables = [
        _alias_table(1.0 / (rank[slot_product[o : o + n]] + 1.0) ** ZIPF_EXPONENT, int(o))
        for o, n in zip(offset, per_category, strict=True)
    ]
    brand_names = [b for brands in vocab.BRANDS for b in brands]
    noun_names = [n for nouns in vocab.CATEGORY_NOUNS for n in nouns]
    width = max(4, len(str(count)))
    frame = pl.DataFrame(
        {
            "number": np.arange(1, count + 1),
            "category": pl.Series(vocab.CATEGORIES)[category],
            "brand": pl.Series(brand_names)[category * len(vocab.BRANDS[0]) + brand],
            "noun": pl.Series(noun_names)[category * len(vocab.CATEGORY_NOUNS[0]) + noun],
            "serial": serial + 1,
            "price": price_cents / 100.0,
        }
    ).select(
        ("demo:P" + pl.col("number").cast(pl.String).str.zfill(width)).alias("product_key"),
        (pl.col("brand") + " " + pl.col("noun") + " " + pl.col("serial").cast(pl.String)).alias("title"),
        "category",
        "brand",
        "price",
    )
    return Catalog(
        category=category,
        price_cents=price_cents,
        frame=frame,
        _offset=offset.astype(np.int64),
        _size=per_category,
        _keep=np.concatenate([keep for keep, _ in tables]),
        _alias=np.concatenate([alias for _, alias in tables]),
        _slot_product=slot_product,
    )
