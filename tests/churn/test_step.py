"""The churn step end to end on small simulated shops: a trained model, or a clear reason why not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pytest

from patron.churn import TABLE_SCHEMA, churn_step
from patron.churn.schemas import ChurnReport
from tests.churn.conftest import LINES, ORDERS, load

AS_OF = datetime(2025, 1, 1)


def simulated_shop(members: int, seed: int, *, lapse: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Members buy every ``gap`` days from their start; with ``lapse``, each stops at a random day."""
    rng = np.random.default_rng(seed)
    orders, lines = [], []
    start = AS_OF - timedelta(days=540)
    for m in range(members):
        gap = int(rng.integers(7, 60))
        first = int(rng.integers(0, 300))
        stop = int(rng.integers(first, 560)) if lapse else 10_000
        for day in range(first, min(stop, 540), gap):
            key = f"o{m}-{day}"
            amount = float(rng.integers(10, 200))
            at = start + timedelta(days=day, hours=int(rng.integers(8, 22)))
            orders.append(
                {
                    **ORDERS[0],
                    "order_key": key,
                    "member_key": f"m{m:04d}",
                    "ordered_at": at,
                    "amount": amount,
                    "discount": 0.0,
                }
            )
            lines.append({**LINES[0], "order_key": key, "product_key": f"p{1 + day % 3}", "amount": amount})
    return orders, lines


def test_a_simulated_shop_trains_a_model_that_ranks_lapses(duck: ibis.BaseBackend) -> None:
    orders, lines = simulated_shop(800, seed=1)
    tables = load(duck, orders, lines)

    result = churn_step(*tables, AS_OF)

    report = result.report()
    assert report["status"] == "ok", report["reason"]
    assert report["metrics"]["model"]["auc"] > 0.8  # a member's own rhythm tells a lapse apart
    assert report["metrics"]["model"]["auc"] > report["metrics"]["recency"]["auc"]
    assert result.table.schema.equals(TABLE_SCHEMA)
    assert result.table.num_rows == report["scoring"]["members"] == len({o["member_key"] for o in orders})
    assert json.loads(json.dumps(report)) == report


def test_too_little_history_gives_an_empty_table_and_the_reason(duck: ibis.BaseBackend) -> None:
    tables = load(duck, ORDERS, LINES)

    result = churn_step(*tables, datetime(2024, 10, 1))

    report = result.report()
    assert report["status"] == "insufficient_history"
    assert report["reason"].startswith("training window at 2024-04-04: 2 members")
    assert result.table.num_rows == 0 and result.table.schema.equals(TABLE_SCHEMA)
    assert report["scoring"]["members"] == 4 and "metrics" not in report
    assert ChurnReport.model_validate(report).metrics == {}  # what the API and CLI read back


def test_a_window_where_nobody_churns_is_reported_not_raised(duck: ibis.BaseBackend) -> None:
    orders, lines = simulated_shop(150, seed=2, lapse=False)
    tables = load(duck, orders, lines)

    result = churn_step(*tables, AS_OF)

    assert result.report()["status"] == "insufficient_history"
    assert "0 churners" in result.report()["reason"]
    assert result.table == pa.table({f.name: pa.array([], f.type) for f in TABLE_SCHEMA}, schema=TABLE_SCHEMA)


@pytest.mark.parametrize("horizon", [30, 180])
def test_other_horizons_move_the_cut_offs(duck: ibis.BaseBackend, horizon: int) -> None:
    orders, lines = simulated_shop(800, seed=3)
    tables = load(duck, orders, lines)

    report = churn_step(*tables, AS_OF, horizon_days=horizon).report()

    assert report["horizon_days"] == horizon
    assert report["training"]["cut_off"] == (AS_OF - timedelta(days=2 * horizon)).isoformat()
    assert report["validation"]["cut_off"] == (AS_OF - timedelta(days=horizon)).isoformat()


def test_new_member_keys_and_another_row_order_give_the_same_model(duck: ibis.BaseBackend) -> None:
    """A re-import draws new opaque member keys; the model must not depend on them (nor on row order)."""
    orders, lines = simulated_shop(800, seed=4)
    rename = {o["member_key"]: f"z{hash(o['member_key']) % 10**9:09d}-{o['member_key']}" for o in orders}
    shuffled = [{**o, "member_key": rename[o["member_key"]]} for o in orders]
    np.random.default_rng(0).shuffle(shuffled)

    first = churn_step(*load(duck, orders, lines), AS_OF)
    second = churn_step(*load(duck, shuffled, lines[::-1], prefix="again_"), AS_OF)

    one, two = first.report(), second.report()
    assert two["metrics"] == one["metrics"] and two["feature_importance"] == one["feature_importance"]
    risk = dict(zip(first.table["member_key"].to_pylist(), first.table["churn_risk"].to_pylist(), strict=True))
    again = dict(zip(second.table["member_key"].to_pylist(), second.table["churn_risk"].to_pylist(), strict=True))
    assert {member: again[rename[member]] for member in risk} == risk
