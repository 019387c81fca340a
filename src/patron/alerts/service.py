"""Alert rules, the daily check that fires them, and the alerts it recorded.

A rule fires at most once per day: the alerts table is unique on (rule, day)
and the check inserts with ``ON CONFLICT DO NOTHING``, so re-running a check,
or two checks running at once, records each firing once and only the run
that recorded an alert posts its webhook.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from patron.alerts.checking import evaluate_rules, record_new_alerts
from patron.alerts.delivery import WebhookPolicy, deliver_pending, secret_owner
from patron.alerts.models import Alert, AlertRule
from patron.alerts.schemas import (
    KIND_FIELDS,
    AlertPage,
    AlertRead,
    AlertRuleCreate,
    AlertRuleCreated,
    AlertRuleRead,
    AlertRuleUpdate,
)
from patron.alerts.series import Metric
from patron.analytics.artefacts import reader_for
from patron.db.base import utcnow
from patron.db.engine import OperationalStore
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.runtime import Runtime

__all__ = [
    "DELIVERY_WAIT",
    "MAX_CHECK_DAYS",
    "MAX_PAGE_SIZE",
    "check_alerts",
    "create_rule",
    "delete_rule",
    "get_rule",
    "list_alerts",
    "list_rules",
    "update_rule",
]

MAX_CHECK_DAYS = 366
#: seconds a check made over HTTP (API or console) waits for its webhooks before answering
DELIVERY_WAIT = 5.0
MAX_PAGE_SIZE = 500
_RULE_FIELDS = tuple(AlertRuleCreate.model_fields)


def _validated(fields: dict[str, Any]) -> AlertRuleCreate:
    """Check a merged rule like a new one, naming the first bad field."""
    try:
        return AlertRuleCreate.model_validate(fields)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(message, field=field) from None


def _apply(rule: AlertRule, data: AlertRuleCreate) -> None:
    for name, value in data.model_dump().items():
        setattr(rule, name, bool(value) if name == "skip_festivals" else value)


def _flush_named(sess: Any, name: str) -> None:
    try:
        sess.flush()
    except IntegrityError as exc:
        raise ConflictError(f"an alert rule named {name!r} exists already") from exc


def create_rule(runtime: Runtime, data: AlertRuleCreate, created_by: str) -> AlertRuleCreated:
    """Store a rule; its webhook signing secret is generated here and returned only now."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    with runtime.store.session() as sess:
        if sess.scalar(select(AlertRule.id).where(AlertRule.name == data.name)) is not None:
            raise ConflictError(f"an alert rule named {data.name!r} exists already")
        rule = AlertRule(created_by=created_by[:128], webhook_secret=b"")
        _apply(rule, data)
        sess.add(rule)
        _flush_named(sess, data.name)
        rule.webhook_secret = runtime.cipher.seal(secret_owner(rule.id), "webhook_secret", secret)
        sess.flush()
        return AlertRuleCreated.model_validate(
            {**AlertRuleRead.model_validate(rule).model_dump(), "webhook_secret": secret}
        )


def list_rules(store: OperationalStore) -> list[AlertRuleRead]:
    with store.session() as sess:
        return [AlertRuleRead.model_validate(r) for r in sess.scalars(select(AlertRule).order_by(AlertRule.id))]


def _rule(sess: Any, rule_id: int) -> AlertRule:
    rule: AlertRule | None = sess.get(AlertRule, rule_id)
    if rule is None:
        raise NotFoundError(f"no alert rule {rule_id}")
    return rule


def get_rule(store: OperationalStore, rule_id: int) -> AlertRuleRead:
    with store.session() as sess:
        return AlertRuleRead.model_validate(_rule(sess, rule_id))


def update_rule(store: OperationalStore, rule_id: int, changes: AlertRuleUpdate) -> AlertRuleRead:
    """Apply a partial change; the resulting rule must be valid as a whole."""
    with store.session() as sess:
        rule = _rule(sess, rule_id)
        current = {name: getattr(rule, name) for name in _RULE_FIELDS}
        given = changes.model_dump(exclude_unset=True)
        if given.get("kind", rule.kind) != rule.kind:
            current.update(dict.fromkeys(KIND_FIELDS[rule.kind]))
        data = _validated({**current, **given})
        _apply(rule, data)
        rule.updated_at = utcnow()
        _flush_named(sess, data.name)
        return AlertRuleRead.model_validate(rule)


def delete_rule(store: OperationalStore, rule_id: int) -> AlertRuleRead:
    """Delete a rule; the alerts it fired stay, under its name."""
    with store.session() as sess:
        rule = _rule(sess, rule_id)
        gone = AlertRuleRead.model_validate(rule)
        sess.delete(rule)
        return gone


def _filtered(
    query: Select[Any], rule_id: int | None, metric: Metric | None, start: date | None, end: date | None
) -> Select[Any]:
    if rule_id is not None:
        query = query.where(Alert.rule_id == rule_id)
    if metric is not None:
        query = query.where(Alert.metric == metric)
    if start is not None:
        query = query.where(Alert.day >= start)
    if end is not None:
        query = query.where(Alert.day <= end)
    return query


def list_alerts(
    store: OperationalStore,
    page: int = 1,
    page_size: int = 50,
    *,
    rule_id: int | None = None,
    metric: Metric | None = None,
    start: date | None = None,
    end: date | None = None,
) -> AlertPage:
    """Alerts, newest day first, filtered by rule, metric and day range ``[start, end]``."""
    if page < 1:
        raise ValidationError("page starts at 1", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be 1 to {MAX_PAGE_SIZE}", field="page_size")
    if start is not None and end is not None and start > end:
        raise ValidationError("start must not be after end", field="start")
    with store.session() as sess:
        query = _filtered(select(Alert), rule_id, metric, start, end)
        count = _filtered(select(func.count()).select_from(Alert), rule_id, metric, start, end)
        rows = sess.scalars(
            query.order_by(Alert.day.desc(), Alert.id.desc()).offset((page - 1) * page_size).limit(page_size)
        )
        items = [AlertRead.model_validate(r) for r in rows]
        return AlertPage(items=items, total=sess.scalar(count) or 0, page=page, page_size=page_size)


def check_alerts(
    runtime: Runtime,
    days: int | None = None,
    *,
    policy: WebhookPolicy = WebhookPolicy(),  # noqa: B008 - frozen, so a shared default is safe
    wait: float | None = None,
) -> list[AlertRead]:
    """Evaluate every enabled rule on the build's last day (or each of its last ``days`` days).

    Records what fired (once per rule and day), posts each new alert to its
    rule's webhook and returns the new alerts, newest day first, with their
    delivery state. Alerts recorded by an earlier check are not returned again.
    With ``wait`` the deliveries are waited for that many seconds at most (see
    :func:`deliver_pending`): a request is not held by slow receivers.
    """
    runtime.store.require_initialised()
    if days is not None and not 1 <= days <= MAX_CHECK_DAYS:
        raise ValidationError(f"days must be 1 to {MAX_CHECK_DAYS}", field="days")
    reader = reader_for(runtime.settings.artefact_dir)
    rules = [r for r in list_rules(runtime.store) if r.enabled]
    if not rules:
        return []
    firings = evaluate_rules(reader, rules, days or 1)
    new_ids = record_new_alerts(runtime.store, firings)
    deliver_pending(runtime, new_ids, policy, wait=wait)
    with runtime.store.session() as sess:
        query = select(Alert).where(Alert.id.in_(new_ids)).order_by(Alert.day.desc(), Alert.id.desc())
        return [AlertRead.model_validate(a) for a in sess.scalars(query)]
