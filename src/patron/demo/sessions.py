"""Browsing sessions: the view -> cart -> purchase funnel behind the orders.

The event log covers the last :data:`EVENT_WINDOW_DAYS` days of the period
(a clickstream kept for a quarter), so that its volume stays near that of
the order lines. Inside the window:

- every order has its session: each bought product is viewed (sometimes
  favourited) and put in the cart, a few other products of the basket's
  categories are viewed and some carted, and the session ends with one
  ``purchase`` event per bought product at the order's instant;
- members research before buying: sessions in the days before an order
  browse one of its categories and often open on a product bought later;
- members, buyers or not, also browse without buying, in the categories of
  their taste, uniformly in operational time (so more in promotions).

Measured on distinct (session, product) pairs, about a third of the viewed
products reach the cart and about half of the carted ones are bought.
Sessions are numbered in the order of their anchor instant: the payment for
an order's session, the first click otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patron.demo.catalog import Catalog
from patron.demo.members import Members
from patron.demo.purchases import Lines, Orders, first_in_group, segment_cumsum
from patron.demo.seasonality import SECONDS_PER_DAY, Clock

__all__ = ["EVENT_TYPES", "EVENT_WINDOW_DAYS", "Events", "draw_events"]

EVENT_TYPES = ("view", "fav", "cart", "purchase")
EVENT_WINDOW_DAYS = 61
EXTRA_VIEWS_PER_ORDER = 1.0  # other products viewed in an order's session (Poisson mean)
EXTRA_CART_P = 0.25
RESEARCH_PER_ORDER = 2.0  # research sessions before an order (Poisson mean)
RESEARCH_LEAD_DAYS = 3.0  # mean time from a research session to the order
RESEARCH_HIT = 0.5  # a research session opens on a product bought later
RESEARCH_SAME_CATEGORY = 0.7
BACKGROUND_PER_ORDER = 4.0  # browsing-only sessions per order of the window
BROWSE_EXTRA_VIEWS = 1.5  # products per browsing session: 1 + Poisson
BROWSE_CART_P = 0.17
FAV_P = 0.05
GAP_SECONDS = 40.0  # mean time between two clicks
CHECKOUT_SECONDS = 60.0  # mean time from the last click to payment
_ORDER, _RESEARCH, _BACKGROUND = range(3)
_VIEW, _FAV, _CART, _PURCHASE = range(4)
_STORE, _APP = 3, 0


@dataclass
class Events:
    """Events grouped by session, sessions in anchor order."""

    member: NDArray[np.int32]
    session: NDArray[np.int32]
    product: NDArray[np.int32]
    kind: NDArray[np.int8]  # index into EVENT_TYPES
    seconds: NDArray[np.int64]
    channel: NDArray[np.int8]


@dataclass
class _Sessions:
    kind: NDArray[np.int64]
    ref: NDArray[np.int64]  # the order of an order's or a research session
    member: NDArray[np.int64]
    at: NDArray[np.int64]
    channel: NDArray[np.int64]


def _random_line(rng: np.random.Generator, lines: Lines, order: NDArray[np.int64]) -> NDArray[np.int64]:
    size = lines.size_of(order)
    result: NDArray[np.int64] = lines.starts[order] + (rng.random(order.size) * size).astype(np.int64)
    return result


def _sessions(
    rng: np.random.Generator, orders: Orders, members: Members, signup: NDArray[np.int64], clock: Clock, start: int
) -> _Sessions:
    """Every session of the window, in anchor order."""
    windowed = np.arange(np.searchsorted(orders.seconds, start, side="left"), orders.member.size, dtype=np.int64)
    research = np.repeat(windowed, rng.poisson(RESEARCH_PER_ORDER, windowed.size))
    lead = 1 + rng.exponential(RESEARCH_LEAD_DAYS * SECONDS_PER_DAY, research.size).astype(np.int64)
    research_at = orders.seconds[research] - lead
    keep = research_at >= np.maximum(start, signup[orders.member[research]])
    research, research_at = research[keep], research_at[keep]

    earliest = np.maximum(clock.to_operational(signup), clock.to_operational(np.asarray([start]))[0])
    span = np.maximum(clock.total - earliest, 0.0)
    rate = BACKGROUND_PER_ORDER * windowed.size / span.sum() if span.sum() > 0 else 0.0
    background = np.repeat(np.arange(members.count, dtype=np.int64), rng.poisson(rate * span))
    background_at = clock.to_seconds(earliest[background] + rng.random(background.size) * span[background])

    browse_channel = np.where(members.channel == _STORE, _APP, members.channel)
    member = np.concatenate((orders.member[windowed], orders.member[research], background))
    sessions = _Sessions(
        kind=np.repeat(np.arange(3), (windowed.size, research.size, background.size)),
        ref=np.concatenate((windowed, research, np.full(background.size, -1))),
        member=member,
        at=np.concatenate((orders.seconds[windowed], research_at, background_at)),
        channel=np.concatenate((orders.channel[windowed], browse_channel[member[windowed.size :]])),
    )
    chrono = np.argsort(sessions.at, kind="stable")
    return _Sessions(*(getattr(sessions, f)[chrono] for f in ("kind", "ref", "member", "at", "channel")))


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
    """Sessions and their events over the last ``window_days`` days (``None``: the whole period)."""
    window_start = 0 if window_days is None else max(0, clock.seconds - window_days * SECONDS_PER_DAY)
    sessions = _sessions(rng, orders, members, signup, clock, window_start)
    kind, ref = sessions.kind, sessions.ref
    ordered = kind == _ORDER
    browse = np.flatnonzero(~ordered)

    # Browsing sessions stay in one category: the taste's, or for research an order's.
    category = np.full(kind.size, -1, dtype=np.int64)
    category[browse] = members.draw_categories(rng, sessions.member[browse])
    research = np.flatnonzero((kind == _RESEARCH) & (rng.random(kind.size) < RESEARCH_SAME_CATEGORY))
    category[research] = lines.category[_random_line(rng, lines, ref[research])]

    n_bought = np.where(ordered, lines.size_of(np.maximum(ref, 0)), 0)
    size = np.where(
        ordered,
        n_bought + rng.poisson(EXTRA_VIEWS_PER_ORDER, kind.size),
        1 + rng.poisson(BROWSE_EXTRA_VIEWS, kind.size),
    )
    session = np.repeat(np.arange(kind.size, dtype=np.int64), size)
    slot = np.arange(session.size, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    buy = slot < n_bought[session]
    item_ordered = ordered[session]
    product = np.empty(session.size, dtype=np.int64)
    product[buy] = lines.product[lines.starts[ref[session[buy]]] + slot[buy]]
    extra = np.flatnonzero(item_ordered & ~buy)
    item_category = category[session]
    item_category[extra] = lines.category[_random_line(rng, lines, ref[session[extra]])]
    other = np.flatnonzero(~buy)
    product[other] = catalog.draw(rng, item_category[other])
    opening = np.flatnonzero((kind[session] == _RESEARCH) & (slot == 0))
    opening = opening[rng.random(opening.size) < RESEARCH_HIT]
    product[opening] = lines.product[_random_line(rng, lines, ref[session[opening]])]
    cart = buy | (rng.random(session.size) < np.where(item_ordered, EXTRA_CART_P, BROWSE_CART_P))
    del slot, item_ordered, item_category, extra, other, opening

    distinct = first_in_group(session, product, int(size.max()) if size.size else 1)
    return _expand(rng, sessions, session[distinct], product[distinct], cart[distinct], buy[distinct], clock)


def _expand(
    rng: np.random.Generator,
    sessions: _Sessions,
    session: NDArray[np.int64],
    product: NDArray[np.int64],
    cart: NDArray[np.bool_],
    buy: NDArray[np.bool_],
    clock: Clock,
) -> Events:
    """Turn items (grouped by session) into timed events.

    Per product: a view, maybe a favourite, maybe a cart event; after the
    session's last click, one purchase event per bought product.
    """
    n_sessions = sessions.kind.size
    fav = rng.random(session.size) < FAV_P
    clicks = 1 + fav.astype(np.int64) + cart
    clicks_total = np.bincount(session, weights=clicks, minlength=n_sessions).astype(np.int64)
    buys = np.bincount(session, weights=buy.astype(np.float64), minlength=n_sessions).astype(np.int64)
    length = clicks_total + buys
    start = np.cumsum(length) - length
    first_item = np.cumsum(np.bincount(session, minlength=n_sessions)) - np.bincount(session, minlength=n_sessions)
    first_item = np.minimum(first_item, max(session.size - 1, 0))
    clicks_before = np.cumsum(clicks) - clicks
    view_at = start[session] + clicks_before - clicks_before[first_item][session]
    buys_before = np.cumsum(buy, dtype=np.int64) - buy
    buy_at = start[session] + clicks_total[session] + buys_before - buys_before[first_item][session]
    del clicks_before, buys_before

    total = int(length.sum())
    item_of = np.empty(total, dtype=np.int64)
    kind = np.empty(total, dtype=np.int8)
    items = np.arange(session.size, dtype=np.int64)
    for kind_value, positions, which in (
        (_VIEW, view_at, items),
        (_FAV, view_at[fav] + 1, items[fav]),
        (_CART, (view_at + 1 + fav)[cart], items[cart]),
        (_PURCHASE, buy_at[buy], items[buy]),
    ):
        item_of[positions] = which
        kind[positions] = kind_value
    del view_at, buy_at, items
    event_session = session[item_of]

    # Clicks are spaced by random gaps; an order's session ends with its payment.
    is_click = kind != _PURCHASE
    gap = np.where(is_click, 1 + rng.exponential(GAP_SECONDS, total).astype(np.int64), 0)
    elapsed = segment_cumsum(gap, length)
    checkout = 5 + rng.exponential(CHECKOUT_SECONDS, n_sessions).astype(np.int64)
    ordered = sessions.kind == _ORDER
    # An order's session ends ``checkout`` seconds before payment; one that would
    # start before the period is compressed to fit (events keep their order).
    lead = np.bincount(event_session, weights=gap, minlength=n_sessions).astype(np.int64) + checkout
    squeeze = np.minimum(1.0, sessions.at / lead)
    to_payment = np.ceil((lead[event_session] - elapsed) * squeeze[event_session]).astype(np.int64)
    del gap, lead, squeeze
    at = sessions.at[event_session]
    seconds = np.where(is_click, np.where(ordered[event_session], at - to_payment, at + elapsed), at)
    np.minimum(seconds, clock.seconds - 1, out=seconds)
    return Events(
        member=sessions.member[event_session].astype(np.int32),
        session=event_session.astype(np.int32),
        product=product[item_of].astype(np.int32),
        kind=kind,
        seconds=seconds,
        channel=sessions.channel[event_session].astype(np.int8),
    )
