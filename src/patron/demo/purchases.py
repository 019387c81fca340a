r"""The purchase process: when members buy, what they buy, what they pay.

Model
-----
Time is *operational* time (days; see :mod:`patron.demo.seasonality`):
calendar time warped by the shop's intensity, which has mean 1, so rates
per operational day equal average rates per calendar day.

Every buyer's first order is their sign-up. Repeat orders then follow the
BG/NBD process of Fader, Hardie and Lee (2005):

- while active, member *i* places repeat orders as a Poisson process with
  rate :math:`\lambda_i \sim \mathrm{Gamma}(r, \alpha)` (shape *r*, rate
  :math:`\alpha`, in operational days);
- after each repeat order the member becomes inactive for good with
  probability :math:`p_i \sim \mathrm{Beta}(a, b)`;
- :math:`\lambda_i` and :math:`p_i` are independent.

The true parameters are :data:`BGNBD_R`, :data:`BGNBD_ALPHA`,
:data:`BGNBD_A` and :data:`BGNBD_B`; a BG/NBD model fitted on the completed
orders (first order = birth, observation ends with the period) should find
values near them. Sampling is exact and vectorised: the number of repeat
orders is ``min(J, K)`` with ``J ~ Geometric(p)`` (orders until dropout) and
``K ~ Poisson(lambda T)`` (orders the period leaves room for); their times
are the first order statistics of ``K`` uniforms on ``[0, T]``, drawn as
normalised cumulative sums of exponentials.

Cancelled orders come on top: before a completed order, the member cancels
another order with probability :data:`CANCEL_RATE` (more in promotions), so
the completed orders alone follow the BG/NBD process.

Baskets: 1-6 distinct products (one more with probability
:data:`PROMO_EXTRA_LINE` in promotion windows, to reach a 满减 threshold);
each line draws a category from the member's Dirichlet taste, then a product
by popularity. Quantities are mostly 1. Promotions: in the 618 and Double-11
windows, a share of lines carry a percentage discount and every order that
reaches a 满减 tier gets the tier's saving, spread over its lines in
proportion to their value; outside them a few orders use a small coupon.
A few percent of lines of completed orders are returned, more in apparel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from patron.demo import vocab
from patron.demo.catalog import Catalog
from patron.demo.members import Members
from patron.demo.seasonality import Clock

__all__ = [
    "BGNBD_A",
    "BGNBD_ALPHA",
    "BGNBD_B",
    "BGNBD_R",
    "CANCEL_RATE",
    "MANJIAN_TIERS",
    "Lines",
    "Orders",
    "draw_lines",
    "draw_orders",
    "first_in_group",
    "segment_cumsum",
]

BGNBD_R = 0.4  # shape of the purchase-rate Gamma
BGNBD_ALPHA = 9.0  # rate of the purchase-rate Gamma, in operational days (mean rate r/alpha per day)
BGNBD_A = 0.9  # dropout probability ~ Beta(a, b); mean a / (a + b)
BGNBD_B = 4.0

CANCEL_RATE = 0.035
CANCEL_RATE_PROMO = 0.06
CANCEL_LEAD_SECONDS = 7_200.0  # mean time from a cancelled order to the completed one
SIGNUP_LEAD_SECONDS = 600.0  # mean time from sign-up to the first order (plus one minute)
ORDER_CHANNEL_LOYALTY = 0.7  # share of orders placed on the member's sign-up channel
ONLINE_CHANNELS = (0, 1, 2)  # app, mini-program, web
ONLINE_CHANNEL_P = (0.55, 0.35, 0.10)
LINES_P = (0.10, 0.27, 0.26, 0.18, 0.11, 0.08)  # 1..6 distinct products
PROMO_EXTRA_LINE = 0.5
QUANTITY_ONE = 0.86  # quantity ~ Geometric(QUANTITY_ONE), capped at 5

MANJIAN_TIERS = ((200_00, 20_00), (300_00, 40_00), (600_00, 90_00), (1_000_00, 160_00))  # cents: spend, save
PERCENT_LINE_SHARE = 0.35  # lines with a percentage discount in promotion windows
PERCENT_OFF = (10, 15, 20)
PERCENT_OFF_P = (0.5, 0.3, 0.2)
COUPON_SHARE = 0.05  # orders outside promotions using the everyday coupon
COUPON = (99_00, 10_00)
PROMO_RETURN_FACTOR = 1.4

_Number = TypeVar("_Number", bound=np.number[Any])


@dataclass
class Orders:
    """Orders in chronological order (index = order number - 1)."""

    member: NDArray[np.int64]
    seconds: NDArray[np.int64]  # since the start of the period
    cancelled: NDArray[np.bool_]
    channel: NDArray[np.int64]
    promo: NDArray[np.bool_]


@dataclass
class Lines:
    """Order lines grouped by order, in order of ``order`` then ``line_no`` (compact types)."""

    order: NDArray[np.int32]
    line_no: NDArray[np.int16]  # 0-based
    product: NDArray[np.int32]
    category: NDArray[np.int8]
    quantity: NDArray[np.int16]
    discount_cents: NDArray[np.int32]
    amount_cents: NDArray[np.int32]
    returned: NDArray[np.bool_]
    starts: NDArray[np.int64]  # first line of each order
    counts: NDArray[np.int64]  # lines of each order

    def size_of(self, order: NDArray[np.int64]) -> NDArray[np.int64]:
        """Return the number of lines of each given order."""
        result: NDArray[np.int64] = self.counts[order]
        return result


def segment_cumsum(values: NDArray[_Number], counts: NDArray[np.int64]) -> NDArray[_Number]:
    """Cumulative sums restarting at each segment (``counts`` consecutive values each)."""
    total = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    offset = np.concatenate((np.zeros(1, dtype=total.dtype), total))[starts]
    result: NDArray[_Number] = total - np.repeat(offset, counts)
    return result


def _choice(rng: np.random.Generator, p: tuple[float, ...], size: int) -> NDArray[np.int64]:
    cum = np.cumsum(np.asarray(p) / sum(p))
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def _repeat_orders(
    rng: np.random.Generator, start: NDArray[np.float64], horizon: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """BG/NBD repeat orders of buyers born at ``start`` (operational days): (buyer index, time)."""
    n = start.size
    rate = rng.gamma(BGNBD_R, 1.0 / BGNBD_ALPHA, n)
    dropout = np.clip(rng.beta(BGNBD_A, BGNBD_B, n), 1e-12, 1.0)
    span = np.maximum(horizon - start, 0.0)
    until_dropout = rng.geometric(dropout)
    room = rng.poisson(rate * span)
    repeats = np.minimum(until_dropout, room).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), repeats)
    arrivals = segment_cumsum(rng.standard_exponential(int(repeats.sum())), repeats)
    last = np.zeros(n)
    has = repeats > 0
    last[has] = arrivals[np.cumsum(repeats)[has] - 1]
    norm = last + rng.standard_gamma((room - repeats + 1).astype(np.float64))
    times = start[owner] + span[owner] * arrivals / norm[owner]
    return owner, times


def draw_orders(rng: np.random.Generator, members: Members, clock: Clock) -> tuple[Orders, NDArray[np.int64]]:
    """All orders, chronological, and every member's sign-up (seconds since start)."""
    buyers = np.flatnonzero(members.buyer)
    owner, repeat_op = _repeat_orders(rng, members.signup_op[buyers], clock.total)
    first_s = clock.to_seconds(members.signup_op[buyers])
    signup = clock.to_seconds(members.signup_op)
    lead = 60 + rng.exponential(SIGNUP_LEAD_SECONDS, buyers.size).astype(np.int64)
    signup[buyers] = np.maximum(first_s - lead, 0)
    member = np.concatenate((buyers, buyers[owner]))
    seconds = np.concatenate((first_s, clock.to_seconds(repeat_op)))
    promo = clock.in_promotion(seconds)
    cancel = rng.random(seconds.size) < np.where(promo, CANCEL_RATE_PROMO, CANCEL_RATE)
    cancel_lead = 1 + rng.exponential(CANCEL_LEAD_SECONDS, int(cancel.sum())).astype(np.int64)
    cancel_s = np.maximum(seconds[cancel] - cancel_lead, signup[member[cancel]])
    member = np.concatenate((member, member[cancel]))
    seconds = np.concatenate((seconds, cancel_s))
    cancelled = np.concatenate((np.zeros(cancel.size, bool), np.ones(cancel_s.size, bool)))
    order = np.lexsort((cancelled, member, seconds))
    member, seconds, cancelled = member[order], seconds[order], cancelled[order]
    online = np.asarray(ONLINE_CHANNELS)[_choice(rng, ONLINE_CHANNEL_P, member.size)]
    channel = np.where(rng.random(member.size) < ORDER_CHANNEL_LOYALTY, members.channel[member], online)
    orders = Orders(member, seconds, cancelled, channel, clock.in_promotion(seconds))
    return orders, signup


def _basket(
    rng: np.random.Generator, orders: Orders, members: Members, catalog: Catalog
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Distinct (order, product, category) lines, grouped by order."""
    size = 1 + _choice(rng, LINES_P, orders.member.size)
    size += orders.promo & (rng.random(size.size) < PROMO_EXTRA_LINE)
    order = np.repeat(np.arange(size.size, dtype=np.int64), size)
    category = members.draw_categories(rng, orders.member[order])
    product = catalog.draw(rng, category)
    first = first_in_group(order, product, int(size.max()) if size.size else 1)
    return order[first], product[first], category[first]


def first_in_group(group: NDArray[np.int64], value: NDArray[np.int64], longest: int) -> NDArray[np.bool_]:
    """Whether each value is the first of its kind in its group (groups contiguous, at most ``longest`` long)."""
    first = np.ones(group.size, dtype=bool)
    for lag in range(1, longest):
        same = (group[lag:] == group[:-lag]) & (value[lag:] == value[:-lag])
        first[lag:] &= ~same
    return first


def draw_lines(rng: np.random.Generator, orders: Orders, members: Members, catalog: Catalog) -> Lines:
    """Baskets, prices, promotions and returns of ``orders``."""
    order, product, category = _basket(rng, orders, members, catalog)
    counts = np.bincount(order, minlength=orders.member.size).astype(np.int64)
    starts = np.cumsum(counts) - counts
    line_no = np.arange(order.size, dtype=np.int64) - np.repeat(starts, counts)
    quantity = np.minimum(rng.geometric(QUANTITY_ONE, order.size), 5).astype(np.int64)
    unit = catalog.price_cents[product]
    gross = unit * quantity
    promo = orders.promo[order]
    percent = np.asarray(PERCENT_OFF)[_choice(rng, PERCENT_OFF_P, order.size)]
    percent = np.where(promo & (rng.random(order.size) < PERCENT_LINE_SHARE), percent, 0)
    off = (gross * percent + 50) // 100
    subtotal_line = gross - off
    subtotal = np.add.reduceat(subtotal_line, starts)
    thresholds = np.asarray([t for t, _ in MANJIAN_TIERS])
    tier = np.searchsorted(thresholds, subtotal, side="right") - 1
    saving = np.where(tier >= 0, np.asarray([s for _, s in MANJIAN_TIERS])[np.maximum(tier, 0)], 0)
    coupon = (rng.random(counts.size) < COUPON_SHARE) & (subtotal >= COUPON[0])
    saving = np.where(orders.promo, saving, np.where(coupon, COUPON[1], 0)).astype(np.int64)
    running = segment_cumsum(subtotal_line, counts)
    per_order = saving[order]
    cum_share = (2 * per_order * running + subtotal[order]) // (2 * subtotal[order])
    share = np.diff(cum_share, prepend=0)
    share[starts] = cum_share[starts]
    discount = off + share
    del running, per_order, cum_share, share, subtotal_line, off, percent
    return_p = np.asarray(vocab.CATEGORY_RETURN_RATE)[category] * np.where(promo, PROMO_RETURN_FACTOR, 1.0)
    returned = (rng.random(order.size) < return_p) & ~orders.cancelled[order]
    return Lines(
        order=order.astype(np.int32),
        line_no=line_no.astype(np.int16),
        product=product.astype(np.int32),
        category=category.astype(np.int8),
        quantity=quantity.astype(np.int16),
        discount_cents=discount.astype(np.int32),
        amount_cents=(gross - discount).astype(np.int32),
        returned=returned,
        starts=starts,
        counts=counts,
    )
