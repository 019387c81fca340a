"""Known shopping festivals: days an anomaly rule may be told to skip.

Festival peaks are planned, not anomalies: a rule with ``skip_festivals``
neither judges these days nor lets them into the baseline of later days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["FESTIVALS", "Festival", "festival_days"]


@dataclass(frozen=True)
class Festival:
    """A yearly window of days, ``first_day`` to ``last_day`` of ``month`` (inclusive)."""

    name: str
    month: int
    first_day: int
    last_day: int


FESTIVALS: tuple[Festival, ...] = (
    Festival("618", month=6, first_day=1, last_day=18),
    Festival("double11", month=11, first_day=1, last_day=11),
)


def festival_days(start: date, end: date, festivals: tuple[Festival, ...] = FESTIVALS) -> frozenset[date]:
    """Every festival day from ``start`` to ``end`` (inclusive)."""
    days: set[date] = set()
    for year in range(start.year, end.year + 1):
        for festival in festivals:
            first = date(year, festival.month, festival.first_day)
            days.update(first + timedelta(days=i) for i in range(festival.last_day - festival.first_day + 1))
    return frozenset(d for d in days if start <= d <= end)
