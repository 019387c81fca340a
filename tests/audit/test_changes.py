"""Audit entries carry what a write changed: before -> after, with secrets and personal data redacted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patron.api.app import create_app
from patron.audit.changes import REDACTED, take
from patron.audit.models import AuditEntry
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.runtime import Runtime
from tests.api.conftest import new_client, sign_in

PASSWORD = "audit-changes-pass-1"


def _entries(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    with runtime.store.session() as sess:
        rows = sess.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)).all()
        return [dict(row.details) for row in rows]


def _one(changes: list[dict[str, Any]], op: str) -> dict[str, Any]:
    (change,) = [c for c in changes if c["op"] == op and c["table"] == "alert_rules"]
    return change


def _signed_in_admin(runtime: Runtime) -> Any:
    create_operator(runtime.store, OperatorCreate(username="auditor", password=PASSWORD, role="admin"))
    client = new_client(create_app(runtime))
    sign_in(client, "auditor", PASSWORD)
    return client


def test_an_update_records_each_changed_field_before_and_after(runtime: Runtime) -> None:
    rule = {"name": "gmv floor", "metric": "gmv", "kind": "threshold", "op": "<", "value": 100}
    with _signed_in_admin(runtime) as client:
        created = client.post("/api/v1/alert-rules", json=rule)
        assert created.status_code == 201, created.text
        rule_id = created.json()["id"]
        changed = client.patch(f"/api/v1/alert-rules/{rule_id}", json={"value": 250, "name": "gmv floor 2"})
        assert changed.status_code == 200, changed.text
        removed = client.delete(f"/api/v1/alert-rules/{rule_id}")
        assert removed.status_code == 200, removed.text

    inserted = _one(_entries(runtime, "alert_rule.create")[-1]["changes"], "insert")
    assert inserted["op"] == "insert" and inserted["table"] == "alert_rules" and inserted["key"] == rule_id
    assert inserted["after"]["name"] == "gmv floor"
    assert inserted["after"]["webhook_secret"] == REDACTED  # a secret shows only that it was set

    updated = _one(_entries(runtime, "alert_rule.update")[-1]["changes"], "update")
    assert updated["op"] == "update" and updated["key"] == rule_id
    assert updated["fields"]["name"] == ["gmv floor", "gmv floor 2"]
    assert [float(v) for v in updated["fields"]["value"]] == [100.0, 250.0]
    assert "metric" not in updated["fields"]  # unchanged fields are not listed

    deleted = _one(_entries(runtime, "alert_rule.delete")[-1]["changes"], "delete")
    assert deleted["op"] == "delete" and deleted["before"]["name"] == "gmv floor 2"


def test_password_hashes_never_reach_the_audit_log(runtime: Runtime) -> None:
    with _signed_in_admin(runtime) as client:
        made = client.post("/api/v1/operators", json={"username": "newbie", "password": PASSWORD, "role": "analyst"})
        assert made.status_code == 201, made.text

    (inserted,) = [c for c in _entries(runtime, "operator.create")[-1]["changes"] if c["table"] == "operators"]
    assert inserted["after"]["username"] == "newbie"
    assert inserted["after"]["password_hash"] == REDACTED
    with runtime.store.session() as sess:
        stored_hash = sess.scalar(select(AuditEntry.details).where(AuditEntry.action == "operator.create"))
    assert "argon2" not in repr(stored_hash)


def test_changes_outside_a_request_are_not_collected(runtime: Runtime) -> None:
    create_operator(runtime.store, OperatorCreate(username="quiet", password=PASSWORD, role="analyst"))
    assert take() == []
