"""Browsing sessions: the view -> cart -> purchase funnel behind the orders.

The event log covers the last :data:`EVENT_WINDOW_DAYS` days of the period
(a clickstream kept for a quarter, like most shops keep it), so that its
volume stays near that of the order lines. Inside the window:

- every order has its session: each bought product is viewed (sometimes
  favourited) and put in the cart, a few other products of the basket's
  categories are viewed and some carted, and the session ends with one
  ``purchase`` event per bought product at the order's instant;
- members research before buying: sessions in the days before an order
  browse its categories and often show one of the products bought later;
- members also browse without buying, in the categories of their taste.

Measured on distinct (session, product) pairs, about 30 % of viewed products
reach the cart and about half of the carted ones are bought.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.demo.catalog import Catalog
from patron.demo.members import Members
from patron.demo.purchases import Lines, Orders, segment_cumsum
from patron.demo.seasonality import SECONDS_PER_DAY, Clock

__all__ = ["EVENT_TYPES", "EVENT_WINDOW_DAYS", "Events", "draw_events"]

EVENT_TYPES = ("view", "fav", "cart", "purchase")
EVENT_WINDOW_DAYS = 92
EXTRA_VIEWS_PER_ORDER = 1.0  # other products viewed in an order's session (Poisson mean)
EXTRA_CART_P = 0.25
ANCHORED_PER_ORDER = 2.0  # research sessions before an order (Poisson mean)
ANCHOR_LEAD_DAYS = 3.0  # mean time from a research session to the order
ANCHOR_HIT = 0.5  # a research session opens on a product bought later
ANCHOR_SAME_CATEGORY = 0.7
BACKGROUND_PER_ORDER = 4.0  # browsing-only sessions, per order in the window
BROWSE_EXTRA_VIEWS = 1.5  # products per browsing session: 1 + Poisson
BROWSE_CART_P = 0.17
FAV_P = 0.05
GAP_SECONDS = 40.0  # mean time between two clicks
CHECKOUT_SECONDS = 60.0  # mean time from the last click to payment
_VIEW, _FAV, _CART, _PURCHASE = range(4)


@dataclass
class Events:
    """Events in session order; sessions numbered by their first event."""

    member: NDArray[np.int64]
    session: NDArray[np.int64]
    product: NDArray[np.int64]
    kind: NDArray[np.int8]  # index into EVENT_TYPES
    seconds: NDArray[np.int64]
    channel: NDArray[np.int64]


@dataclass
class _Items:
    """Products shown in sessions, before expansion into events."""

    session: NDArray[np.int64]
    product: NDArray[np.int64]
    cart: NDArray[np.bool_]
    buy: NDArray[np.bool_]


def _concat(parts: list[_Items]) -> _Items:
    return _Items(
        session=np.concatenate([p.session for p in parts]),
        product=np.concatenate([p.product for p in parts]),
        cart=np.concatenate([p.cart for p in parts]),
        buy=np.concatenate([p.buy for p in parts]),
    )


def _random_line(rng: np.random.Generator, lines: Lines, order: NDArray[np.int64]) -> NDArray[np.int64]:
    ends = np.append(lines.starts[1:], lines.order.size)
    size = ends[order] - lines.starts[order]
    result: NDArray[np.int64] = lines.starts[order] + (rng.random(order.size) * size).astype(np.int64)
    return result


def _browse_items(
    rng: np.random.Generator, first_session: int, categories: NDArray[np.int64], catalog: Catalog
) -> tuple[_Items, NDArray[np.int64]]:
    """Items of browsing sessions (one category each); also each item's session rank."""
    size = 1 + rng.poisson(BROWSE_EXTRA_VIEWS, categories.size)
    rank = np.repeat(np.arange(categories.size, dtype=np.int64), size)
    product = catalog.draw(rng, categories[rank])
    cart = rng.random(rank.size) < BROWSE_CART_P
    items = _Items(first_session + rank, product, cart, np.zeros(rank.size, dtype=bool))
    return items, rank


def draw_events(
    rng: np.random.Generator,
    orders: Orders,
    lines: Lines,
    members: Members,
    signup: NDArray[np.int64],
    catalog: Catalog,
    clock: Clock,
    window_days: int | None,
) -> Events:
    """Sessions and their events over the window (``None``: the whole period)."""
    window_start = 0 if window_days is None else max(0, clock.seconds - window_days * SECONDS_PER_DAY)
    first = int(np.searchsorted(orders.seconds, window_start, side="left"))
    windowed = np.arange(first, orders.member.size, dtype=np.int64)
    n_orders = windowed.size
    first_line = int(lines.starts[first]) if first < lines.starts.size else lines.order.size
    bought = _Items(
        lines.order[first_line:] - first,
        lines.product[first_line:],
        np.ones(lines.order.size - first_line, dtype=bool),
        np.ones(lines.order.size - first_line, dtype=bool),
    )
    extra_owner = np.repeat(np.arange(n_orders, dtype=np.int64), rng.poisson(EXTRA_VIEWS_PER_ORDER, n_orders))
    extra_category = lines.category[_random_line(rng, lines, windowed[extra_owner])]
    extra = _Items(
        extra_owner,
        catalog.draw(rng, extra_category),
        rng.random(extra_owner.size) < EXTRA_CART_P,
        np.zeros(extra_owner.size, dtype=bool),
    )

    # Research sessions in the days before an order, in its categories.
    anchor_owner = np.repeat(windowed, rng.poisson(ANCHORED_PER_ORDER, n_orders))
    lead = 1 + rng.exponential(ANCHOR_LEAD_DAYS * SECONDS_PER_DAY, anchor_owner.size).astype(np.int64)
    anchor_at = orders.seconds[anchor_owner] - lead
    keep = anchor_at >= np.maximum(window_start, signup[orders.member[anchor_owner]])
    anchor_owner, anchor_at = anchor_owner[keep], anchor_at[keep]
    anchor_member = orders.member[anchor_owner]
    same = rng.random(anchor_owner.size) < ANCHOR_SAME_CATEGORY
    anchor_category = np.where(
        same,
        lines.category[_random_line(rng, lines, anchor_owner)],
        members.draw_categories(rng, anchor_member),
    )
    research, rank = _browse_items(rng, n_orders, anchor_category, catalog)
    opening = np.ones(rank.size, dtype=bool)
    opening[1:] = rank[1:] != rank[:-1]
    hit = opening & (rng.random(rank.size) < ANCHOR_HIT)
    research.product[hit] = lines.product[_random_line(rng, lines, anchor_owner[rank[hit]])]

    # Browsing without buying, by any member signed up before the end.
    earliest = np.maximum(clock.to_operational(signup), clock.to_operational(np.asarray([window_start]))[0])
    span = np.maximum(clock.total - earliest, 0.0)
    n_background = int(rng.poisson(BACKGROUND_PER_ORDER * n_orders)) if span.sum() > 0 else 0
    span_cum = np.cumsum(span / span.sum()) if span.sum() > 0 else np.ones(1)
    background_member = np.minimum(np.searchsorted(span_cum, rng.random(n_background), side="right"), span.size - 1)
    background_at = clock.to_seconds(earliest[background_member] + rng.random(n_background) * span[background_member])
    background, _ = _browse_items(
        rng, n_orders + anchor_owner.size, members.draw_categories(rng, background_member), catalog
    )

    browse_channel = np.where(members.channel == 3, 0, members.channel)  # store members browse in the app
    session_member = np.concatenate((orders.member[windowed], anchor_member, background_member))
    session_channel = np.concatenate(
        (orders.channel[windowed], browse_channel[anchor_member], browse_channel[background_member])
    )
    session_at = np.concatenate((orders.seconds[windowed], anchor_at, background_at))
    items = _concat([bought, extra, research, background])
    distinct = pl.Series(items.session * catalog.count + items.product).is_first_distinct().to_numpy()
    order = np.argsort(items.session[distinct], kind="stable")
    items = _Items(*(getattr(items, f)[distinct][order] for f in ("session", "product", "cart", "buy")))
    return _expand(rng, items, session_member, session_channel, session_at, n_orders, clock)


def _expand(
    rng: np.random.Generator,
    items: _Items,
    session_member: NDArray[np.int64],
    session_channel: NDArray[np.int64],
    session_at: NDArray[np.int64],
    n_order_sessions: int,
    clock: Clock,
) -> Events:
    """Turn items (sorted by session) into timed events, numbered chronologically by session."""
    n_sessions = session_member.size
    fav = rng.random(items.session.size) < FAV_P
    pre = 1 + fav.astype(np.int64) + items.cart
    pre_total = np.bincount(items.session, weights=pre, minlength=n_sessions).astype(np.int64)
    buys = np.bincount(items.session, weights=items.buy.astype(np.float64), minlength=n_sessions).astype(np.int64)
    length = pre_total + buys
    start = np.cumsum(length) - length
    first_item = np.searchsorted(items.session, np.arange(n_sessions))
    pre_before = np.cumsum(pre) - pre
    view_at = start[items.session] + pre_before - pre_before[np.minimum(first_item, pre.size - 1)][items.session]
    buy_before = np.cumsum(items.buy) - items.buy
    buy_at = (
        start[items.session]
        + pre_total[items.session]
        + buy_before
        - buy_before[np.minimum(first_item, pre.size - 1)][items.session]
    )
    total = int(length.sum())
    item_of = np.empty(total, dtype=np.int64)
    kind = np.empty(total, dtype=np.int8)
    all_items = np.arange(items.session.size, dtype=np.int64)
    cart_at = view_at + 1 + fav
    for kind_value, positions, which in (
        (_VIEW, view_at, all_items),
        (_FAV, view_at[fav] + 1, all_items[fav]),
        (_CART, cart_at[items.cart], all_items[items.cart]),
        (_PURCHASE, buy_at[items.buy], all_items[items.buy]),
    ):
        item_of[positions] = which
        kind[positions] = kind_value
    session = items.session[item_of]

    # Clicks are spaced by random gaps; an order's session ends in its payment.
    is_pre = kind != _PURCHASE
    gap = np.where(is_pre, 1 + rng.exponential(GAP_SECONDS, total).astype(np.int64), 0)
    elapsed = segment_cumsum(gap, length)
    checkout = 5 + rng.exponential(CHECKOUT_SECONDS, n_sessions).astype(np.int64)
    base = session_at.copy()
    ordered = np.arange(n_sessions) < n_order_sessions
    gap_total = np.bincount(session, weights=gap, minlength=n_sessions).astype(np.int64)
    base[ordered] -= checkout[ordered] + gap_total[ordered]
    seconds = np.where(is_pre, base[session] + elapsed, session_at[session])
    seconds = np.clip(seconds, 0, clock.seconds - 1)

    # Number sessions by their first event; events keep their order inside a session.
    first_at = seconds[start]
    chronological = np.argsort(first_at, kind="stable")
    new_start = np.cumsum(length[chronological]) - length[chronological]
    new_id = np.empty(n_sessions, dtype=np.int64)
    new_id[chronological] = np.arange(n_sessions)
    position = new_start[new_id[session]] + (np.arange(total) - start[session])
    out = np.empty(total, dtype=np.int64)
    out[position] = np.arange(total)
    return Events(
        member=session_member[session[out]],
        session=new_id[session[out]],
        product=items.product[item_of[out]],
        kind=kind[out],
        seconds=seconds[out],
        channel=session_channel[session[out]],
    )
