"""Daily KPI series from the current build's order facts.

The series of a metric holds one value per calendar day from the shop's
first completed order (or the requested start, if later) to the requested
end. A day without orders counts as zero for every metric, ``aov`` and
``repurchase_rate`` included, never as missing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np

from patron.alerts.detection import DailySeries
from patron.analytics.artefacts import BuildReader
from patron.analytics.kpi import kpi_table

__all__ = ["METRICS", "Metric", "build_last_day", "daily_kpis", "first_order_day"]

Metric = Literal["gmv", "orders", "aov", "buyers", "repurchase_rate", "new_buyers", "returning_buyers"]
METRICS: tuple[Metric, ...] = get_args(Metric)


def build_last_day(reader: BuildReader) -> date:
    """The last day the build covers: the day before its as-of date."""
    return date.fromisoformat(reader.manifest["as_of"]) - timedelta(days=1)


def first_order_day(reader: BuildReader) -> date | None:
    """The day of the first completed order in the build, or None without one."""
    orders = reader.table("orders")
    first: Any = orders.filter(orders.status == "completed").ordered_at.min().execute()
    if first is None or first != first:  # None or NaT
        return None
    return first.date() if isinstance(first, datetime) else date.fromisoformat(str(first)[:10])


def daily_kpis(reader: BuildReader, start: date, end: date) -> dict[Metric, DailySeries]:
    """Every KPI of :func:`patron.analytics.kpi.kpi_table` per day from ``start`` to ``end`` (inclusive)."""
    days = max((end - start).days + 1, 0)
    values = {metric: np.zeros(days, dtype=np.float64) for metric in METRICS}
    if days:
        rows = kpi_table(reader.table("orders"), start, end + timedelta(days=1), "day").to_pyarrow().to_pylist()
        for row in rows:
            i = (row["period"].date() - start).days
            for metric in METRICS:
                values[metric][i] = float(row[metric] or 0.0)
    return {metric: DailySeries(start, series) for metric, series in values.items()}
