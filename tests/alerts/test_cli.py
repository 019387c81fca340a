"""`patron alerts` through Typer's CliRunner, against the planned shop and a per-test store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patron.audit.service import list_audit
from patron.cli import alerts as alerts_cli
from patron.cli.common import close_runtimes
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY
from tests.alerts.conftest import SPIKE_DAY, ZERO_DAY, Receiver

Patron = Callable[..., Result]


@pytest.fixture
def alerts(shop: Runtime) -> Patron:
    """Run `patron alerts ...` on the shop's data directory and this test's store."""
    env = {
        "PATRON_HOME": str(shop.settings.home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": shop.settings.database_url,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": PLACEHOLDER_MASTER_KEY,
    }

    def invoke(*args: str) -> Result:
        try:
            return CliRunner().invoke(alerts_cli.app, list(args), env=env, catch_exceptions=False)
        finally:
            close_runtimes()  # what the main `patron` callback does when a command ends

    return invoke


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_list_check_and_list_alerts(alerts: Patron, receiver: Receiver) -> None:
    added = as_json(
        alerts("rules", "add", "--name", "no orders", "--metric", "orders", "--kind", "threshold",
               "--op", "lt", "--value", "1", "--webhook-url", receiver.url, "--json")
    )  # fmt: skip
    spike = alerts("rules", "add", "--name", "spike", "--metric", "orders", "--kind", "anomaly", "--direction", "up")
    rules = as_json(alerts("rules", "list", "--json"))
    fired = as_json(alerts("check", "--days", "7", "--json"))
    again = as_json(alerts("check", "--days", "7", "--json"))
    listed = as_json(alerts("list", "--json"))
    table = alerts("list")

    assert added["op"] == "<" and added["webhook_secret"].startswith("whsec_")
    assert (
        spike.exit_code == 0 and "webhook signing secret: whsec_" in spike.stdout and "shown only now" in spike.stdout
    )
    assert [r["name"] for r in rules] == ["no orders", "spike"] and "webhook_secret" not in rules[0]
    assert [(a["day"], a["rule_name"]) for a in fired] == [
        (SPIKE_DAY.isoformat(), "spike"),
        (ZERO_DAY.isoformat(), "no orders"),
    ]
    assert [a["delivery_status"] for a in fired] == ["none", "delivered"] and len(receiver.requests) == 1
    assert again == []
    assert listed["total"] == 2
    assert table.exit_code == 0 and "2024-03-27" in table.stdout and "delivered" in table.stdout


def test_enable_disable_remove(alerts: Patron, shop: Runtime) -> None:
    rule = as_json(
        alerts("rules", "add", "--name", "busy", "--metric", "gmv", "--kind", "pct_change",
               "--op", ">", "--percent", "50", "--compare-to", "same_weekday", "--disabled", "--json")
    )  # fmt: skip

    off = as_json(alerts("check", "--json"))
    enabled = alerts("rules", "enable", str(rule["id"]))
    on = as_json(alerts("check", "--json"))
    disabled = alerts("rules", "disable", str(rule["id"]))
    removed = alerts("rules", "remove", str(rule["id"]))
    empty = alerts("rules", "list")

    assert rule["enabled"] is False and off == []
    assert enabled.exit_code == 0 and "enabled" in enabled.stdout
    assert [a["day"] for a in on] == [SPIKE_DAY.isoformat()]
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    assert removed.exit_code == 0 and "deleted" in removed.stdout
    assert "no alert rules yet" in empty.stdout
    actions = [e.action for e in list_audit(shop.store, page_size=50).items if e.actor.startswith("cli:")]
    assert actions == [
        "alert_rule.delete", "alert_rule.disable", "alerts.check", "alert_rule.enable", "alerts.check",
        "alert_rule.create",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["rules", "add", "--name", "x", "--metric", "profit", "--kind", "threshold", "--op", "<", "--value", "1"],
         "metric"),
        (["rules", "add", "--name", "x", "--metric", "gmv", "--kind", "threshold", "--op", "<"], "needs value"),
        (["rules", "add", "--name", "x", "--metric", "gmv", "--kind", "anomaly", "--weeks", "1"], "weeks"),
        (["rules", "add", "--name", "x", "--metric", "gmv", "--kind", "threshold", "--op", "<", "--value", "1",
          "--webhook-url", "file:///etc/passwd"], "http or https"),
        (["rules", "remove", "99"], "no alert rule 99"),
        (["rules", "enable", "99"], "no alert rule 99"),
        (["list", "--metric", "profit"], "metric"),
        (["list", "--start", "2024-02-30"], "not a date"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_and_exit_1(alerts: Patron, args: list[str], words: str) -> None:
    result = alerts(*args)

    assert result.exit_code == 1
    assert words in result.stderr and result.stdout == ""


def test_a_taken_name_and_the_help(alerts: Patron) -> None:
    args = ["rules", "add", "--name", "x", "--metric", "gmv", "--kind", "threshold", "--op", ">", "--value", "1"]
    first, second = alerts(*args), alerts(*args)
    help_text = alerts("rules", "add", "--help")

    assert first.exit_code == 0
    assert second.exit_code == 1 and "exists already" in second.stderr
    assert help_text.exit_code == 0 and "--skip-festivals" in help_text.stdout
