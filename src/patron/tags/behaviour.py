"""Behaviour tags: what, at which price, how, when and where a member buys.

Computed in the warehouse (one Ibis expression, any engine) from the member's
completed orders placed before ``as_of``; one row per member with such an
order. Rules, cut points and tie-breaks are in docs/tags.md.

- category affinity: the category with the most spend on lines not returned
  (ties: the alphabetically first), and its share of all that spend;
- price index: the quantity-weighted geometric mean, over the units kept, of
  ``unit_price / reference price``, the reference being the median catalogue
  price of the product's category; mapped to a price band;
- discount sensitivity: the share of orders carrying a discount and
  ``sum(discount) / sum(amount + discount)``, mapped to low / medium / high;
- preferred weekday (0 = Monday) and hour: the most frequent one, kept only
  with at least 3 orders of which it holds at least 40 % (ties: the earliest);
- main channel: the channel of most orders (ties: the alphabetically first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

from patron.errors import ValidationError

__all__ = [
    "BEHAVIOUR_COLUMNS",
    "BUDGET_BELOW",
    "DISCOUNT_SENSITIVITIES",
    "HIGH_DISCOUNT_RATE",
    "HIGH_DISCOUNT_SHARE",
    "LOW_DISCOUNT_SHARE",
    "PREFERENCE_MIN_ORDERS",
    "PREFERENCE_MIN_SHARE",
    "PREMIUM_ABOVE",
    "PRICE_BANDS",
    "DiscountSensitivity",
    "PriceBand",
    "behaviour_tags",
]

PriceBand = Literal["budget", "mid", "premium"]
DiscountSensitivity = Literal["low", "medium", "high"]
PRICE_BANDS: tuple[PriceBand, ...] = ("budget", "mid", "premium")
DISCOUNT_SENSITIVITIES: tuple[DiscountSensitivity, ...] = ("low", "medium", "high")

# Price band: budget below 0.8 x the category's median price, premium above 1.25 x (= 1 / 0.8).
BUDGET_BELOW = 0.8
PREMIUM_ABOVE = 1.25
# Discount sensitivity: high when at least half of the orders carry a discount worth at least 5 % of the
# gross; low when fewer than one order in five carries one; medium otherwise.
HIGH_DISCOUNT_SHARE = 0.5
HIGH_DISCOUNT_RATE = 0.05
LOW_DISCOUNT_SHARE = 0.2
# A preferred weekday or hour needs 3 orders, at least 40 % of them on it (2 of 3, 2 of 5, 4 of 10).
PREFERENCE_MIN_ORDERS = 3
_PREFERENCE_SHARE = (2, 5)  # as a fraction, so that the test stays in integers on every engine
PREFERENCE_MIN_SHARE = _PREFERENCE_SHARE[0] / _PREFERENCE_SHARE[1]

BEHAVIOUR_COLUMNS = (
    "member_key",
    "top_category",
    "top_category_share",
    "price_index",
    "price_band",
    "discounted_order_share",
    "discount_rate",
    "discount_sensitivity",
    "preferred_weekday",
    "preferred_hour",
    "main_channel",
)


_NEEDED = {
    "orders": ("order_key", "member_key", "ordered_at", "status", "channel", "amount", "discount"),
    "lines": ("order_key", "product_key", "quantity", "unit_price", "amount", "returned"),
    "products": ("product_key", "category", "price"),
}


def _require_columns(name: str, table: ir.Table) -> None:
    missing = [c for c in _NEEDED[name] if c not in table.columns]
    if missing:
        raise ValidationError(f"the {name} table lacks the columns {', '.join(missing)}", field=name)


def _completed(orders: ir.Table, as_of: datetime) -> ir.Table:
    return orders.filter((orders.status == "completed") & orders.member_key.notnull() & (orders.ordered_at < as_of))


def _reference_prices(products: ir.Table) -> ir.Table:
    """Per product: its category and the median positive catalogue price of that category.

    Products without a category form one group of their own, so a catalogue
    without categories still gets a price band (against its overall median).
    """
    priced = products.filter(products.price > 0)
    medians = priced.group_by("category").aggregate(reference_price=priced.price.median())
    joined = products.left_join(medians, products.category.identical_to(medians.category))
    return joined.select(products.product_key, products.category, medians.reference_price)


def _category_spend(done: ir.Table, lines: ir.Table, products: ir.Table) -> ir.Table:
    """Per member and category (null: unknown), over the lines kept: spend, and the sums of the price index."""
    kept = lines.filter(~lines.returned)
    bought = kept.join(done, "order_key").select(
        done.member_key, kept.product_key, kept.quantity, kept.unit_price, kept.amount
    )
    reference = _reference_prices(products)
    lines_with = bought.left_join(reference, "product_key").select(
        bought, reference.category, reference.reference_price
    )
    priced = (lines_with.unit_price > 0) & lines_with.reference_price.notnull() & (lines_with.quantity > 0)
    # The guard sits inside ln(): engines evaluate it on every row, before an aggregate's filter.
    log_ratio = ibis.ifelse(priced, lines_with.unit_price / lines_with.reference_price, 1.0).ln()
    return lines_with.group_by(["member_key", "category"]).aggregate(
        spend=lines_with.amount.sum(),
        log_price_units=(log_ratio * lines_with.quantity).sum(where=priced),
        priced_units=lines_with.quantity.sum(where=priced),
    )


def _first_by(table: ir.Table, key: str, weight: ir.Value) -> ir.Table:
    """Per member, the row with the largest ``weight`` (ties: the smallest ``key``)."""
    rank = ibis.row_number().over(group_by=table.member_key, order_by=[weight.desc(), table[key].asc()])
    ranked = table.mutate(_rank=rank)
    return ranked.filter(ranked._rank == 0).drop("_rank")


def _category_and_price(spend: ir.Table) -> ir.Table:
    totals = spend.group_by("member_key").aggregate(
        total=spend.spend.sum(),
        log_price_units=spend.log_price_units.sum(),
        priced_units=spend.priced_units.sum(),
    )
    named = spend.filter(spend.category.notnull() & (spend.spend > 0))
    # Rank by whole cents so that sums rounded differently by two engines still tie the same way.
    top = _first_by(named, "category", (named.spend * 100).round().cast("int64"))
    joined = totals.left_join(top, "member_key").select(totals, top.category, top_spend=top.spend)
    index = ibis.ifelse(joined.priced_units > 0, (joined.log_price_units / joined.priced_units).exp(), ibis.null())
    band = ibis.cases((index < BUDGET_BELOW, "budget"), (index > PREMIUM_ABOVE, "premium"), else_="mid")
    return joined.select(
        "member_key",
        top_category=joined.category,
        top_category_share=(joined.top_spend / joined.total).cast("float64"),
        price_index=index.cast("float64"),
        price_band=ibis.ifelse(index.notnull(), band, ibis.null()).cast("string"),
    )


def _slot_counts(prefix: str, slot: ir.IntegerValue, slots: int) -> dict[str, ir.IntegerScalar]:
    """Per slot (weekday or hour), the number of orders in it: one column each, so one pass over the orders."""
    return {f"{prefix}{i}": ibis.ifelse(slot == i, 1, 0).sum() for i in range(slots)}


def _preferred(per_member: ir.Table, prefix: str, slots: int) -> ir.IntegerValue:
    """The modal slot (ties: the earliest), or null without enough orders or a clear enough mode."""
    counts = [per_member[f"{prefix}{i}"] for i in range(slots)]
    most = ibis.greatest(*counts)
    modal = ibis.cases(*((count == most, i) for i, count in enumerate(counts)))
    share_num, share_den = _PREFERENCE_SHARE  # most / orders >= 2/5 as 5 most >= 2 orders, in integers
    enough = (per_member.orders >= PREFERENCE_MIN_ORDERS) & (most * share_den >= per_member.orders * share_num)
    return ibis.ifelse(enough, modal, ibis.null("int8")).cast("int8")


def _order_habits(done: ir.Table) -> ir.Table:
    """Discount sensitivity, preferred weekday and hour: one aggregation of the completed orders."""
    per_member = done.group_by("member_key").aggregate(
        orders=done.count(),
        discounted=ibis.ifelse(done.discount > 0, 1, 0).sum(),
        discount=done.discount.sum(),
        gross=(done.amount + done.discount).sum(),
        **_slot_counts("weekday_", done.ordered_at.day_of_week.index(), 7),
        **_slot_counts("hour_", done.ordered_at.hour(), 24),
    )
    share = (per_member.discounted / per_member.orders).cast("float64")
    rate = ibis.ifelse(per_member.gross > 0, per_member.discount / per_member.gross, 0.0).cast("float64")
    level = ibis.cases(
        ((share >= HIGH_DISCOUNT_SHARE) & (rate >= HIGH_DISCOUNT_RATE), "high"),
        (share < LOW_DISCOUNT_SHARE, "low"),
        else_="medium",
    )
    return per_member.select(
        "member_key",
        discounted_order_share=share,
        discount_rate=rate,
        discount_sensitivity=level.cast("string"),
        preferred_weekday=_preferred(per_member, "weekday_", 7),
        preferred_hour=_preferred(per_member, "hour_", 24),
    )


def _main_channel(done: ir.Table) -> ir.Table:
    known = done.filter(done.channel.notnull())
    counted = known.group_by(["member_key", "channel"]).aggregate(n=known.count())
    top = _first_by(counted, "channel", counted.n)
    return top.select("member_key", main_channel=top.channel)


def behaviour_tags(orders: ir.Table, lines: ir.Table, products: ir.Table, as_of: datetime) -> ir.Table:
    """Behaviour tags of every member with a completed order before ``as_of``.

    Columns (:data:`BEHAVIOUR_COLUMNS`): ``member_key``; ``top_category``
    and ``top_category_share`` (null without spend in a known category);
    ``price_index`` and ``price_band`` (one of :data:`PRICE_BANDS`; null
    without a priced line); ``discounted_order_share``, ``discount_rate`` and
    ``discount_sensitivity`` (one of :data:`DISCOUNT_SENSITIVITIES`);
    ``preferred_weekday`` (0 = Monday .. 6) and ``preferred_hour`` (0..23),
    null without a preference; ``main_channel`` (null when no order has one).
    """
    for name, table in (("orders", orders), ("lines", lines), ("products", products)):
        _require_columns(name, table)
    done = _completed(orders, as_of)
    parts = [_category_and_price(_category_spend(done, lines, products)), _main_channel(done)]
    tags = _order_habits(done)
    for part in parts:
        tags = tags.left_join(part, "member_key").select(tags, *(part[c] for c in part.columns if c != "member_key"))
    return tags.select(*BEHAVIOUR_COLUMNS)
