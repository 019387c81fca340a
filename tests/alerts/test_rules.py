"""Alert rules: validation with named fields, create/update/delete, the sealed webhook secret, database checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from patron.alerts.models import AlertRule
from patron.alerts.schemas import AlertRuleCreate, AlertRuleUpdate
from patron.alerts.service import create_rule, delete_rule, get_rule, list_rules, update_rule
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.runtime import Runtime

THRESHOLD = {"name": "low gmv", "metric": "gmv", "kind": "threshold", "op": "<", "value": 1000}
PCT = {"name": "orders drop", "metric": "orders", "kind": "pct_change", "op": "<=", "percent": -30}
ANOMALY = {"name": "buyers anomaly", "metric": "buyers", "kind": "anomaly"}


def invalid(fields: dict[str, Any]) -> tuple[str, str]:
    """The location and message of the first error pydantic reports."""
    with pytest.raises(PydanticValidationError) as caught:
        AlertRuleCreate.model_validate(fields)
    first = caught.value.errors()[0]
    return ".".join(map(str, first["loc"])), str(first["msg"])


# --- validation -----------------------------------------------------------------------


def test_each_kind_gets_its_defaults_and_nothing_of_the_others() -> None:
    threshold = AlertRuleCreate.model_validate(THRESHOLD)
    pct = AlertRuleCreate.model_validate(PCT)
    anomaly = AlertRuleCreate.model_validate(ANOMALY)

    assert (threshold.op, threshold.value, threshold.weeks, threshold.skip_festivals) == ("<", 1000, None, None)
    assert (pct.compare_to, pct.percent, pct.value) == ("previous_day", -30, None)
    assert (anomaly.weeks, anomaly.min_weeks, anomaly.z_threshold, anomaly.direction) == (8, 4, 3.5, "both")
    assert (anomaly.mad_from, anomaly.skip_festivals, anomaly.op) == ("all_weekdays", False, None)


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"metric": "profit"}, "metric", "gmv"),
        ({"kind": "forecast"}, "kind", "threshold"),
        ({"op": "=="}, "op", "<"),
        ({"op": None}, "op", "needs op"),
        ({"value": None}, "value", "needs value"),
        ({"value": float("inf")}, "value", "finite"),
        ({"weeks": 8}, "weeks", "does not apply to threshold"),
        ({"percent": 5}, "percent", "does not apply"),
        ({"skip_festivals": True}, "skip_festivals", "does not apply"),
        ({"name": "  "}, "name", "at least 1"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url", "http or https"),
        ({"colour": "red"}, "colour", "not permitted"),
    ],
)
def test_bad_threshold_rules_name_the_field(change: dict[str, Any], loc: str, words: str) -> None:
    where, message = invalid({**THRESHOLD, **change})

    assert where == loc
    assert words in message


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"weeks": 1}, "weeks", "greater than or equal to 2"),
        ({"weeks": 53}, "weeks", "less than or equal to 52"),
        ({"weeks": 4, "min_weeks": 6}, "min_weeks", "cannot exceed weeks"),
        ({"z_threshold": 0}, "z_threshold", "greater than 0"),
        ({"direction": "sideways"}, "direction", "both"),
        ({"mad_from": "median"}, "mad_from", "all_weekdays"),
        ({"op": ">"}, "op", "does not apply to anomaly"),
    ],
)
def test_bad_anomaly_rules_name_the_field(change: dict[str, Any], loc: str, words: str) -> None:
    where, message = invalid({**ANOMALY, **change})

    assert where == loc
    assert words in message


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/alerts",
        "javascript:alert(1)",
        "mailto:ops@example.com",
        "example.com/hook",
        "http://",
        "https:///path-only",
        "http://exa mple.com/",
    ],
)
def test_webhook_urls_other_than_http_and_https_are_refused(url: str) -> None:
    where, message = invalid({**THRESHOLD, "webhook_url": url})

    assert where == "webhook_url"
    assert "http" in message or "host" in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://\u0378x/hook", "cannot be posted to"),  # an unassigned code point: no IDNA form
        ("http://hooks.example.com\x00/", "cannot be posted to"),
        ("http://hooks.example.com:99999/", "port must be 1 to 65535"),
    ],
)
def test_webhook_urls_that_could_never_be_posted_are_refused_when_saved(url: str, why: str) -> None:
    where, message = invalid({**THRESHOLD, "webhook_url": url})

    assert where == "webhook_url"
    assert why in message


def test_http_and_https_webhooks_are_accepted() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://hooks.example.com/patron?team=ops"):
        assert AlertRuleCreate.model_validate({**THRESHOLD, "webhook_url": url}).webhook_url == url


# --- the service ----------------------------------------------------------------------


def test_create_returns_the_secret_once_and_stores_it_sealed(runtime: Runtime) -> None:
    created = create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "operator:ana")

    listed = list_rules(runtime.store)
    with runtime.store.session() as sess:
        sealed = sess.scalar(select(AlertRule.webhook_secret).where(AlertRule.id == created.id))

    assert created.webhook_secret.startswith("whsec_") and len(created.webhook_secret) > 40
    assert created.created_by == "operator:ana"
    assert [r.id for r in listed] == [created.id]
    assert "webhook_secret" not in listed[0].model_dump()
    assert sealed is not None and created.webhook_secret.encode() not in sealed
    assert runtime.cipher.open(f"alert_rule:{created.id}", "webhook_secret", sealed) == created.webhook_secret


def test_every_rule_has_its_own_secret(runtime: Runtime) -> None:
    first = create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")
    second = create_rule(runtime, AlertRuleCreate.model_validate(PCT), "cli:test")

    assert first.webhook_secret != second.webhook_secret


def test_names_are_unique(runtime: Runtime) -> None:
    create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")

    with pytest.raises(ConflictError, match="low gmv"):
        create_rule(runtime, AlertRuleCreate.model_validate({**PCT, "name": "low gmv"}), "cli:test")


def test_update_changes_given_fields_and_checks_the_whole_rule(runtime: Runtime) -> None:
    rule = create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")

    changed = update_rule(runtime.store, rule.id, AlertRuleUpdate(value=500, enabled=False))
    as_anomaly = update_rule(runtime.store, rule.id, AlertRuleUpdate(kind="anomaly", weeks=6))

    assert (changed.value, changed.enabled, changed.op, changed.name) == (500, False, "<", "low gmv")
    assert changed.updated_at >= rule.updated_at
    assert (as_anomaly.kind, as_anomaly.op, as_anomaly.value) == ("anomaly", None, None)
    assert (as_anomaly.weeks, as_anomaly.min_weeks, as_anomaly.z_threshold) == (6, 4, 3.5)
    assert get_rule(runtime.store, rule.id) == as_anomaly


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"kind": "pct_change"}, "op", "a pct_change rule needs op"),  # a new kind starts without the old fields
        ({"value": None}, "value", "needs value"),
        ({"weeks": 8}, "weeks", "does not apply to threshold"),
        ({"kind": "anomaly", "min_weeks": 9}, "min_weeks", "cannot exceed"),
    ],
)
def test_an_update_that_breaks_the_rule_names_the_field(
    runtime: Runtime, changes: dict[str, Any], field: str, words: str
) -> None:
    rule = create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")

    with pytest.raises(ValidationError) as caught:
        update_rule(runtime.store, rule.id, AlertRuleUpdate.model_validate(changes))

    assert caught.value.field == field
    assert words in str(caught.value)
    assert get_rule(runtime.store, rule.id).value == 1000  # nothing half-applied


def test_an_update_to_a_taken_name_conflicts(runtime: Runtime) -> None:
    create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")
    other = create_rule(runtime, AlertRuleCreate.model_validate(PCT), "cli:test")

    with pytest.raises(ConflictError):
        update_rule(runtime.store, other.id, AlertRuleUpdate(name="low gmv"))


def test_missing_rules_are_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError, match="999"):
        get_rule(runtime.store, 999)
    with pytest.raises(NotFoundError):
        update_rule(runtime.store, 999, AlertRuleUpdate(enabled=True))
    with pytest.raises(NotFoundError):
        delete_rule(runtime.store, 999)


def test_delete_returns_the_rule_and_removes_it(runtime: Runtime) -> None:
    rule = create_rule(runtime, AlertRuleCreate.model_validate(PCT), "cli:test")

    gone = delete_rule(runtime.store, rule.id)

    assert gone.name == "orders drop"
    assert list_rules(runtime.store) == []


# --- the database refuses what the schema refuses ------------------------------------


@pytest.mark.parametrize(
    "assignments",
    [
        "metric = 'profit'",
        "op = '=='",
        "kind = 'forecast'",
        "value = NULL",  # a threshold rule without its value
        "weeks = 1",
        "direction = 'sideways'",
    ],
)
def test_check_constraints_hold_in_the_database(runtime: Runtime, assignments: str) -> None:
    rule = create_rule(runtime, AlertRuleCreate.model_validate(THRESHOLD), "cli:test")

    with pytest.raises(IntegrityError), runtime.store.session() as sess:
        sess.execute(text(f"UPDATE alert_rules SET {assignments} WHERE id = :id"), {"id": rule.id})
