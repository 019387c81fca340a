"""One check: judge the enabled rules on the build's last days and record what fired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from patron.alerts.calendar import festival_days
from patron.alerts.detection import DailySeries, Finding, pct_change_finding, robust_z_finding, threshold_finding
from patron.alerts.models import Alert
from patron.alerts.schemas import AlertRuleRead
from patron.alerts.series import build_last_day, daily_kpis, first_order_day
from patron.analytics.artefacts import BuildReader
from patron.db.base import utcnow
from patron.db.engine import OperationalStore

__all__ = ["Firing", "evaluate_rules", "judge", "lookback_days", "record_new_alerts"]

_CHUNK = 500  # rows per INSERT, well under SQLite's bound-parameter limit
_MESSAGE_LENGTH = 512


@dataclass(frozen=True)
class Firing:
    """A rule that fired on a day, with the finding that says why."""

    rule: AlertRuleRead
    day: date
    finding: Finding

    @property
    def message(self) -> str:
        value = self.finding.value or 0.0
        text = f"{self.rule.name}: {self.rule.metric} = {value:,.2f} on {self.day.isoformat()} ({self.finding.detail})"
        return text[:_MESSAGE_LENGTH]


def lookback_days(rule: AlertRuleRead) -> int:
    """Days of history before a judged day that the rule reads."""
    if rule.kind == "anomaly":
        return 7 * (rule.weeks or 0)
    if rule.kind == "pct_change":
        return 7 if rule.compare_to == "same_weekday" else 1
    return 0


def judge(rule: AlertRuleRead, series: DailySeries, day: date, festivals: frozenset[date] = frozenset()) -> Finding:
    """The rule's verdict on ``day`` of its metric's series."""
    if rule.kind == "threshold":
        assert rule.op is not None and rule.value is not None  # guaranteed by the table's check constraints
        return threshold_finding(series, day, rule.op, rule.value)
    if rule.kind == "pct_change":
        assert rule.op is not None and rule.percent is not None and rule.compare_to is not None
        return pct_change_finding(series, day, rule.op, rule.percent, rule.compare_to)
    assert rule.weeks is not None and rule.min_weeks is not None
    assert rule.z_threshold is not None and rule.direction is not None and rule.mad_from is not None
    return robust_z_finding(
        series,
        day,
        weeks=rule.weeks,
        threshold=rule.z_threshold,
        direction=rule.direction,
        min_weeks=rule.min_weeks,
        mad_from=rule.mad_from,
        excluded=festivals if rule.skip_festivals else frozenset(),
    )


def evaluate_rules(reader: BuildReader, rules: list[AlertRuleRead], days: int) -> list[Firing]:
    """Judge every rule on each of the build's last ``days`` days; return what fired."""
    last = build_last_day(reader)
    judged = [last - timedelta(days=i) for i in range(days - 1, -1, -1)]
    start = judged[0] - timedelta(days=max(lookback_days(rule) for rule in rules))
    opening = first_order_day(reader)  # before the first order the shop had no history, not zeros
    start = judged[0] if opening is None else min(max(start, opening), last)
    series = daily_kpis(reader, start, last)
    festivals = festival_days(start, last)
    firings = []
    for rule in rules:
        for day in judged:
            finding = judge(rule, series[rule.metric], day, festivals)
            if finding.fired:
                firings.append(Firing(rule, day, finding))
    return firings


def _row(firing: Firing) -> dict[str, Any]:
    finding = firing.finding
    return {
        "rule_id": firing.rule.id,
        "rule_name": firing.rule.name,
        "kind": firing.rule.kind,
        "metric": firing.rule.metric,
        "day": firing.day,
        "value": finding.value,
        "expected": finding.expected,
        "score": finding.score,
        "message": firing.message,
        "created_at": utcnow(),
        "delivery_status": "pending" if firing.rule.webhook_url else "none",
        "delivery_attempts": 0,
    }


def record_new_alerts(store: OperationalStore, firings: list[Firing]) -> list[int]:
    """Insert the firings not recorded yet; return the ids of the new alerts.

    The unique (rule, day) constraint decides what is new, so concurrent
    checks cannot record a firing twice.
    """
    insert = sqlite_insert if store.dialect == "sqlite" else pg_insert
    rows = [_row(f) for f in firings]
    new_ids: list[int] = []
    with store.session() as sess:
        for begin in range(0, len(rows), _CHUNK):
            statement = (
                insert(Alert)
                .values(rows[begin : begin + _CHUNK])
                .on_conflict_do_nothing(index_elements=["rule_id", "day"])
                .returning(Alert.id)
            )
            new_ids.extend(sess.execute(statement).scalars())
    return new_ids
