"""The order history summarised once per member and calendar day, for churn features at any cut-off.

Each churn run reads the history at three cut-offs; the costly passes over the order lines happen once,
here. Category breadth needs, per member and cut-off, the number of distinct categories bought before
it: with at most :data:`CATEGORY_BITS` categories each one is a bit of an int64, OR-ed over a member's
lines and days and counted per cut-off (no per-category table); with more, the first purchase of each
(member, category) pair is kept instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Final

import ibis
import ibis.expr.types as ir

__all__ = ["CATEGORY_BITS", "OrderFacts", "cached_order_facts", "order_facts"]

CATEGORY_BITS: Final = 63


@dataclass(frozen=True)
class OrderFacts:
    """The members' order history (guest orders left out), summarised.

    ``days``: one row per member and calendar day with a completed order: orders, value (lines not
    returned), lines, returned lines, discount, gross, first and last order instant, ``previous_day`` (the
    member's purchase day before this one, epoch seconds) and ``category_bits`` (bit *i* set when a line
    of that day is in ``categories[i]``). ``cancellations``: orders of other statuses per member and day.
    With more than :data:`CATEGORY_BITS` categories, ``categories`` is None and ``first_in_category``
    holds the first completed order of each member in each category.
    """

    days: ir.Table
    cancellations: ir.Table
    categories: tuple[str, ...] | None
    first_in_category: ir.Table | None = None


def _category_bits(products: ir.Table) -> tuple[tuple[str, ...] | None, ir.Table | None]:
    """The categories, and a product_key -> bit table, when they fit in one int64; else (None, None)."""
    found = products.filter(products.category.notnull()).select("category").distinct().to_pyarrow()
    names = tuple(sorted(found.column("category").to_pylist()))
    if len(names) > CATEGORY_BITS:
        return None, None
    branches = [(products.category == name, 1 << i) for i, name in enumerate(names)]
    bit = ibis.cases(*branches, else_=0) if branches else ibis.literal(0)
    return names, products.select("product_key", bit=bit.cast("int64"))


def order_facts(orders: ir.Table, lines: ir.Table, products: ir.Table) -> OrderFacts:
    """Summarise the members' orders per day (and, with many categories, per category)."""
    names, bits = _category_bits(products)
    if bits is not None:
        lines = lines.left_join(bits, "product_key").select(lines, bit=bits.bit.fill_null(0))
    else:
        lines = lines.mutate(bit=ibis.literal(0, "int64"))
    per_order = lines.group_by("order_key").aggregate(
        value=lines.amount.sum(where=~lines.returned).fill_null(0.0),  # as rfm.order_values
        lines=lines.count(),
        returned_lines=ibis.ifelse(lines.returned, 1, 0).sum(),
        bits=lines.bit.bit_or(),
    )
    known = orders.filter(orders.member_key.notnull())
    known = known.mutate(day=known.ordered_at.truncate("D"))
    done = known.filter(known.status == "completed")
    other = known.filter(known.status != "completed")
    return OrderFacts(
        days=_days(done, per_order),
        cancellations=other.group_by(["member_key", "day"]).aggregate(cancelled=other.count()),
        categories=names,
        first_in_category=None if names is not None else _first_in_category(done, lines, products),
    )


def _days(done: ir.Table, per_order: ir.Table) -> ir.Table:
    dated = done.left_join(per_order, "order_key").select(
        done.member_key,
        done.day,
        done.ordered_at,
        gross=done.amount + done.discount,
        discount=done.discount,
        value=per_order.value.fill_null(0.0),
        lines=per_order.lines.fill_null(0),
        returned_lines=per_order.returned_lines.fill_null(0),
        bits=per_order.bits.fill_null(0),
    )
    days = dated.group_by(["member_key", "day"]).aggregate(
        orders=dated.count(),
        first_at=dated.ordered_at.min(),
        last_at=dated.ordered_at.max(),
        value=dated.value.sum(),
        lines=dated.lines.sum(),
        returned_lines=dated.returned_lines.sum(),
        discount=dated.discount.sum(),
        gross=dated.gross.sum(),
        category_bits=dated.bits.bit_or(),
    )
    previous = days.day.lag().over(group_by=days.member_key, order_by=days.day)
    return days.mutate(previous_day=previous.epoch_seconds())


def _first_in_category(done: ir.Table, lines: ir.Table, products: ir.Table) -> ir.Table:
    bought = done.join(lines, "order_key").join(products, lines.product_key == products.product_key)
    bought = bought.filter(bought.category.notnull())
    return bought.group_by(["member_key", "category"]).aggregate(first_at=bought.ordered_at.min())


@contextmanager
def cached_order_facts(orders: ir.Table, lines: ir.Table, products: ir.Table) -> Iterator[OrderFacts]:
    """:func:`order_facts` materialised once (temporary tables), released on exit."""
    facts = order_facts(orders, lines, products)
    with ExitStack() as stack:
        first = facts.first_in_category
        yield replace(
            facts,
            days=stack.enter_context(facts.days.cache()),
            cancellations=stack.enter_context(facts.cancellations.cache()),
            first_in_category=None if first is None else stack.enter_context(first.cache()),
        )
