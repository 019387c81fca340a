"""Per-member value figures for the build: P(alive), expected purchases, 12-month CLV.

The warehouse computes each member's purchase days (completed orders, one purchase per calendar day,
as lifetimes and Fader, Hardie & Lee define repeat purchases); the models are fitted in process on
that compact summary with time in weeks: BG/NBD for purchases and P(alive), Gamma-Gamma (on repeat
buyers with a positive mean repeat spend) for spend, combined into a CLV discounted at 1 % a month.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from patron.clv import bgnbd, gamma_gamma
from patron.clv.schemas import BgNbdParams, GammaGammaParams
from patron.clv.summary import CustomerSummary
from patron.errors import ValidationError

__all__ = ["HORIZON_DAYS", "VALUE_COLUMNS", "MemberValue", "member_value", "purchase_days"]

log = logging.getLogger(__name__)
HORIZON_DAYS = 90
_WEEK = 7 * 86400.0
VALUE_COLUMNS = ("p_alive", "expected_purchases_90d", "clv_12m")


@dataclass(frozen=True)
class MemberValue:
    """Per-member figures (Arrow) and the fitted parameters (None when a model could not be fitted)."""

    table: pa.Table
    purchases: BgNbdParams | None
    spend: GammaGammaParams | None

    def parameters(self) -> dict[str, Any]:
        return {
            "bgnbd": None if self.purchases is None else vars(self.purchases),
            "gamma_gamma": None if self.spend is None else vars(self.spend),
            "time_unit": "weeks",
            "horizon_days": HORIZON_DAYS,
        }


def purchase_days(orders: ir.Table, as_of: datetime) -> ir.Table:
    """Per member: repeat purchase days, recency and age in weeks, mean spend of the repeat days."""
    done = orders.filter((orders.status == "completed") & orders.member_key.notnull() & (orders.ordered_at < as_of))
    dated = done.mutate(day=done.ordered_at.truncate("D"))
    days = dated.group_by(["member_key", "day"]).aggregate(spend=dated.amount.sum())
    days = days.mutate(nth=ibis.row_number().over(group_by=days.member_key, order_by=days.day))
    per = days.group_by("member_key").aggregate(
        n=days.count(),
        first=days.day.min().epoch_seconds(),
        last=days.day.max().epoch_seconds(),
        repeat_spend=days.spend.sum(where=days.nth > 0).fill_null(0.0),
    )
    end = ibis.literal(as_of).epoch_seconds()
    return per.select(
        "member_key",
        frequency=(per.n - 1).cast("float64"),
        recency=(per["last"] - per["first"]) / _WEEK,
        T=(end - per["first"]) / _WEEK,
        monetary_value=ibis.ifelse(per.n > 1, per.repeat_spend / (per.n - 1), 0.0),
    )


def _fit_spend(summary: CustomerSummary) -> GammaGammaParams | None:
    money = summary.monetary_value
    if money is None:
        return None
    keep = (summary.frequency > 0) & (money > 0)
    if not np.any(keep):
        return None
    repeaters = CustomerSummary(summary.frequency[keep], summary.recency[keep], summary.T[keep], money[keep])
    try:
        params = gamma_gamma.fit(repeaters).params
    except ValidationError as exc:
        log.warning("spend model not fitted", extra={"reason": str(exc)})
        return None
    return params if params.q > 1 else None


def member_value(orders: ir.Table, as_of: datetime) -> MemberValue:
    """Fit the models on the members' purchase days and score every member."""
    frame = purchase_days(orders, as_of).to_pyarrow()
    keys = frame.column("member_key")
    columns = {name: frame.column(name).to_numpy() for name in ("frequency", "recency", "T", "monetary_value")}
    empty = pa.table({"member_key": keys, **{c: pa.nulls(len(keys), pa.float64()) for c in VALUE_COLUMNS}})
    if len(keys) == 0:
        return MemberValue(empty, None, None)
    summary = CustomerSummary(**columns)
    try:
        purchases = bgnbd.fit(summary).params
    except ValidationError as exc:
        log.warning("purchase model not fitted", extra={"reason": str(exc)})
        return MemberValue(empty, None, None)
    horizon = HORIZON_DAYS / 7
    x, t_x, age = summary.frequency, summary.recency, summary.T
    figures = {
        "p_alive": bgnbd.probability_alive(purchases, x, t_x, age),
        "expected_purchases_90d": bgnbd.conditional_expected_purchases(purchases, horizon, x, t_x, age),
    }
    spend = _fit_spend(summary)
    if spend is None:
        figures["clv_12m"] = np.full(len(keys), np.nan)
    else:
        figures["clv_12m"] = gamma_gamma.customer_lifetime_value(purchases, spend, summary, time_unit="weeks")
    table = pa.table(
        {"member_key": keys, **{k: pa.array(v, pa.float64(), from_pandas=True) for k, v in figures.items()}}
    )
    return MemberValue(table, purchases, spend)
