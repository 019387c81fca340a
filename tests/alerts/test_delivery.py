"""Webhooks posted to a real HTTP receiver on 127.0.0.1: body, signature, retries, failures recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time

import httpx2
import pytest

from patron.alerts.delivery import DeliveryResult, WebhookPolicy, post_alert, sign
from patron.alerts.schemas import AlertRuleCreate, AlertRuleUpdate
from patron.alerts.service import check_alerts, create_rule, list_alerts, update_rule
from patron.runtime import Runtime
from tests.alerts.conftest import ZERO_DAY, Receiver

FAST = WebhookPolicy(attempts=3, timeout=2.0, backoff=0.05)
NO_ORDERS = {"name": "no orders", "metric": "orders", "kind": "threshold", "op": "<", "value": 1}


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_alert_is_posted_with_its_fields_and_a_verifiable_signature(shop: Runtime, receiver: Receiver) -> None:
    created = create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")

    [alert] = check_alerts(shop, days=7, policy=FAST)

    [request] = receiver.requests
    expected = "sha256=" + hmac.new(created.webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()
    body = json.loads(request.body)
    assert request.path == "/hooks/patron"
    assert request.headers["Content-Type"] == "application/json"
    assert hmac.compare_digest(request.headers["X-Patron-Signature"], expected)
    assert request.headers["X-Patron-Event"] == "alert.fired"
    assert body == {
        "event": "alert.fired",
        "id": alert.id,
        "rule_id": created.id,
        "rule_name": "no orders",
        "kind": "threshold",
        "metric": "orders",
        "day": ZERO_DAY.isoformat(),
        "value": 0.0,
        "expected": 1.0,
        "score": None,
        "message": alert.message,
        "created_at": alert.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert (alert.delivery_status, alert.delivery_attempts, alert.delivery_error) == ("delivered", 1, None)
    assert alert.delivered_at is not None


def test_a_signature_made_with_another_secret_does_not_match(shop: Runtime, receiver: Receiver) -> None:
    created = create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")
    check_alerts(shop, days=7, policy=FAST)

    [request] = receiver.requests
    assert request.headers["X-Patron-Signature"] == sign(created.webhook_secret, request.body)
    assert request.headers["X-Patron-Signature"] != sign(created.webhook_secret + "x", request.body)
    assert request.headers["X-Patron-Signature"] != sign(created.webhook_secret, request.body + b" ")


def test_two_server_errors_then_success_is_delivered_on_the_third_try(shop: Runtime, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 200]
    create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")

    [alert] = check_alerts(shop, days=7, policy=FAST)

    assert (alert.delivery_status, alert.delivery_attempts, alert.delivery_error) == ("delivered", 3, None)
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same signed body each time
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.10  # exponential back-off
    assert list_alerts(shop.store).items[0].delivery_status == "delivered"


def test_a_receiver_that_always_fails_leaves_the_alert_failed_with_the_error(shop: Runtime, receiver: Receiver) -> None:
    receiver.statuses = [500]
    create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")

    [alert] = check_alerts(shop, days=7, policy=FAST)
    again = check_alerts(shop, days=7, policy=FAST)

    assert (alert.delivery_status, alert.delivery_attempts, alert.delivery_error) == ("failed", 3, "HTTP 500")
    assert alert.delivered_at is None
    assert len(receiver.requests) == 3
    assert again == []  # recorded once: a re-run neither duplicates nor re-posts it
    assert len(receiver.requests) == 3


def test_a_client_error_is_not_retried(shop: Runtime, receiver: Receiver) -> None:
    receiver.statuses = [410]
    create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")

    [alert] = check_alerts(shop, days=7, policy=FAST)

    assert (alert.delivery_status, alert.delivery_attempts, alert.delivery_error) == ("failed", 1, "HTTP 410")


def test_a_refused_connection_is_retried_then_recorded(shop: Runtime) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": url}), "cli:t")

    [alert] = check_alerts(shop, days=7, policy=FAST)

    assert (alert.delivery_status, alert.delivery_attempts) == ("failed", 3)
    assert alert.delivery_error is not None and alert.delivery_error.startswith("ConnectError")


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay = 0.5

    with httpx2.Client() as client:
        result = post_alert(
            client, receiver.url, {"id": 1}, "s3cret", WebhookPolicy(attempts=2, timeout=0.1, backoff=0)
        )

    assert result.status == "failed" and result.attempts == 2
    assert result.error is not None and "Timeout" in result.error


def test_rules_without_a_webhook_are_not_posted_and_removing_the_url_stops_posts(
    shop: Runtime, receiver: Receiver
) -> None:
    created = create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")
    changed = update_rule(shop.store, created.id, AlertRuleUpdate(webhook_url=None))

    [alert] = check_alerts(shop, days=7, policy=FAST)

    assert changed.webhook_url is None
    assert (alert.delivery_status, alert.delivery_attempts) == ("none", 0)
    assert receiver.requests == []


def test_post_alert_reports_each_outcome(receiver: Receiver) -> None:
    sleeps: list[float] = []
    receiver.statuses = [502, 502, 502, 200]

    with httpx2.Client() as client:
        result = post_alert(client, receiver.url, {"id": 7}, "k", FAST, sleep=sleeps.append)

    assert result == DeliveryResult("failed", 3, "HTTP 502")
    assert sleeps == pytest.approx([0.05, 0.10])


def test_a_url_that_cannot_be_sent_fails_at_once_instead_of_raising() -> None:
    sleeps: list[float] = []

    with httpx2.Client() as client:
        result = post_alert(client, "http://\u0378x/hook", {"id": 9}, "k", FAST, sleep=sleeps.append)

    assert (result.status, result.attempts, sleeps) == ("failed", 1, [])
    assert result.error is not None and result.error.startswith("InvalidURL")


def test_alerts_for_different_receivers_are_each_delivered_and_recorded(shop: Runtime, receiver: Receiver) -> None:
    refused = f"http://127.0.0.1:{free_port()}/hook"
    for name, url in (("to the receiver", receiver.url), ("to nobody", refused)):
        create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "name": name, "webhook_url": url}), "cli:t")

    alerts = check_alerts(shop, days=7, policy=FAST)

    outcome = {alert.rule_name: (alert.delivery_status, alert.delivery_attempts) for alert in alerts}
    assert outcome == {"to the receiver": ("delivered", 1), "to nobody": ("failed", 3)}
    assert len(receiver.requests) == 1


def test_a_slow_receiver_does_not_hold_a_check_that_waits_a_bounded_time(shop: Runtime, receiver: Receiver) -> None:
    receiver.release = threading.Event()  # the receiver answers only when the check has returned
    patient = WebhookPolicy(attempts=3, timeout=30.0, backoff=0.05)
    create_rule(shop, AlertRuleCreate.model_validate({**NO_ORDERS, "webhook_url": receiver.url}), "cli:t")

    began = time.monotonic()
    [alert] = check_alerts(shop, days=7, policy=patient, wait=0.2)
    waited = time.monotonic() - began
    receiver.release.set()

    # held for the delivery, the check would have waited the 30 s timeout at least
    assert alert.delivery_status == "pending" and waited < 10.0
    deadline = time.monotonic() + 20
    while list_alerts(shop.store, 1, 10).items[0].delivery_status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    [recorded] = list_alerts(shop.store, 1, 10).items
    assert (recorded.delivery_status, recorded.delivery_attempts) == ("delivered", 1)
    assert len(receiver.requests) == 1
