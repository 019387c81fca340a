"""Posting alerts to webhooks, signed and retried.

The body is compact JSON with sorted keys. ``X-Patron-Signature`` is
``sha256=`` followed by the hex HMAC-SHA256 of the exact body bytes, keyed by
the rule's secret; receivers recompute it and compare in constant time.
A delivery makes up to ``attempts`` tries: connection errors, timeouts, 429
and 5xx answers are retried after ``backoff * 2**(try - 1)`` seconds; any
other non-2xx answer fails at once (the receiver refused the alert).
Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from sqlalchemy import select

from patron import __version__
from patron.alerts.models import Alert, AlertRule
from patron.alerts.schemas import AlertRead
from patron.db.base import utcnow
from patron.runtime import Runtime

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryResult",
    "WebhookPolicy",
    "alert_payload",
    "deliver_pending",
    "encode_body",
    "post_alert",
    "secret_owner",
    "sign",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Patron-Signature"
_MAX_ERROR = 500
_PARALLEL_URLS = 8
_Pending = tuple[dict[str, Any], int, str | None, bytes]  # payload, rule id, URL, sealed secret
_BOOKKEEPING = {"delivery_status", "delivery_attempts", "delivery_error", "delivered_at"}


@dataclass(frozen=True)
class WebhookPolicy:
    """How hard to try: tries per alert, seconds per try, first back-off in seconds."""

    attempts: int = 3
    timeout: float = 5.0
    backoff: float = 0.5


@dataclass(frozen=True)
class DeliveryResult:
    status: Literal["delivered", "failed"]
    attempts: int
    error: str | None = None


def secret_owner(rule_id: int) -> str:
    """Associated data binding a sealed webhook secret to its rule."""
    return f"alert_rule:{rule_id}"


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are posted and signed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def post_alert(
    client: httpx2.Client,
    url: str,
    payload: dict[str, Any],
    secret: str,
    policy: WebhookPolicy = WebhookPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Post ``payload`` to ``url`` until it is accepted or the tries run out."""
    body = encode_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"patron/{__version__}",
        "X-Patron-Event": "alert.fired",
        SIGNATURE_HEADER: sign(secret, body),
    }
    error = ""
    for attempt in range(1, policy.attempts + 1):
        if attempt > 1:
            sleep(policy.backoff * 2 ** (attempt - 2))
        try:
            response = client.post(url, content=body, headers=headers, timeout=policy.timeout)
        except httpx2.TransportError as exc:
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        except (httpx2.HTTPError, httpx2.InvalidURL, UnicodeError, ValueError) as exc:  # no try can succeed
            log.info("webhook refused before sending", extra={"error": type(exc).__name__})
            return DeliveryResult("failed", attempt, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR])
        else:
            if 200 <= response.status_code < 300:
                return DeliveryResult("delivered", attempt)
            error = f"HTTP {response.status_code}"
            if not _retryable(response.status_code):
                return DeliveryResult("failed", attempt, error)
        log.info("webhook attempt failed", extra={"attempt": attempt, "error": error})
    return DeliveryResult("failed", policy.attempts, error)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert fields a receiver gets (the delivery bookkeeping stays out)."""
    fields = AlertRead.model_validate(alert).model_dump(mode="json", exclude=_BOOKKEEPING)
    return {"event": "alert.fired", **fields}


def deliver_pending(
    runtime: Runtime,
    alert_ids: list[int],
    policy: WebhookPolicy = WebhookPolicy(),
    *,
    wait: float | None = None,
) -> None:
    """Post each pending alert among ``alert_ids`` to its rule's webhook; record the outcome on the alert.

    Deliveries run outside any transaction on one connection pool; each
    outcome is committed as soon as it is known. Alerts for one webhook URL
    are posted one after another, in order; different URLs are served in
    parallel (up to ``_PARALLEL_URLS``), so one slow or unreachable receiver
    does not hold up the others' alerts. With ``wait`` (seconds) the caller
    returns after that long at most: deliveries still under way finish on a
    background thread and record their outcome then (their alerts read
    ``pending`` until; one cut short by a restart of the process stays so).
    """
    with runtime.store.session() as sess:
        query = (
            select(Alert, AlertRule.id, AlertRule.webhook_url, AlertRule.webhook_secret)
            .join(AlertRule, Alert.rule_id == AlertRule.id)
            .where(Alert.id.in_(alert_ids), Alert.delivery_status == "pending")
            .order_by(Alert.id)
        )
        pending = [(alert_payload(alert), rule_id, url, sealed) for alert, rule_id, url, sealed in sess.execute(query)]
    if not pending:
        return
    by_url: dict[str | None, list[_Pending]] = defaultdict(list)
    for item in pending:
        by_url[item[2]].append(item)

    def deliver(client: httpx2.Client, queue: list[_Pending]) -> None:
        for payload, rule_id, url, sealed in queue:
            result = DeliveryResult("failed", 0, "the rule no longer has a webhook URL")
            if url is not None:
                secret = runtime.cipher.open(secret_owner(rule_id), "webhook_secret", sealed)
                result = post_alert(client, url, payload, secret, policy)
            with runtime.store.session() as sess:
                alert = sess.get_one(Alert, payload["id"])
                alert.delivery_status, alert.delivery_attempts = result.status, result.attempts
                alert.delivery_error = result.error
                alert.delivered_at = utcnow() if result.status == "delivered" else None
            log.info("alert delivery", extra={"alert_id": payload["id"], "status": result.status})

    def deliver_all() -> None:
        with httpx2.Client(follow_redirects=False) as client:
            if len(by_url) == 1:
                deliver(client, pending)
                return
            with ThreadPoolExecutor(max_workers=min(_PARALLEL_URLS, len(by_url))) as pool:
                for done in [pool.submit(deliver, client, queue) for queue in by_url.values()]:
                    done.result()

    if wait is None:
        deliver_all()
        return

    def in_background() -> None:
        try:
            deliver_all()
        except Exception:  # nobody waits for this thread: say what went wrong instead of losing it
            log.exception("alert deliveries stopped", extra={"alerts": len(pending)})

    worker = threading.Thread(target=in_background, name="alert-webhooks", daemon=True)
    worker.start()
    worker.join(wait)
