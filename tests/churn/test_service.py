"""The churn step on online-retail: the model against P(alive) and recency in one run, cross-checked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from patron.analytics.member_value import member_value
from patron.churn import FEATURES, TABLE_SCHEMA, ChurnResult, cached_order_facts, churn_labels, member_features
from patron.churn.baseline import bgnbd_scores
from patron.churn.features import MISSING_CREDIT
from patron.churn.model import fit_churn_model
from patron.churn.service import churn_step, read_churn_report, write_churn_report
from patron.errors import NotFoundError, ValidationError
from patron.runtime import Runtime
from tests.churn.conftest import RETAIL_AS_OF

pytestmark = pytest.mark.slow
HORIZON = timedelta(days=90)
RECENCY_CODES = {"recency_days", "recency_ratio"}


def _frame(retail: Runtime, cut_off: object, labelled: bool = True) -> pl.DataFrame:
    with retail.warehouse(read_only=True) as warehouse:
        tables = (warehouse.table(n) for n in ("orders", "order_lines", "products"))
        with cached_order_facts(*tables) as facts:
            table = member_features(facts, cut_off)  # type: ignore[arg-type]
            if labelled:
                table = table.join(churn_labels(facts, cut_off, 90), "member_key")  # type: ignore[arg-type]
            frame = pl.from_arrow(table.order_by("member_key").to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(FEATURES).to_numpy().astype(np.float64)


def test_the_model_beats_p_alive_and_recency_on_auc_in_the_same_run(retail_churn: ChurnResult) -> None:
    report = retail_churn.report()
    metrics = report["metrics"]

    assert report["status"] == "ok"
    assert metrics["model"]["auc"] > metrics["p_alive"]["auc"]
    assert metrics["model"]["auc"] > metrics["recency"]["auc"]
    assert metrics["model"]["auc"] > 0.7
    # All scored on the same later window.
    assert len({metrics[k]["members"] for k in metrics}) == 1 == len({metrics[k]["churn_rate"] for k in metrics})


def test_windows_and_auc_cross_checked_with_scikit_learn(retail: Runtime, retail_churn: ChurnResult) -> None:
    report = retail_churn.report()
    train = _frame(retail, RETAIL_AS_OF - 2 * HORIZON)
    valid = _frame(retail, RETAIL_AS_OF - HORIZON)
    # The same fit as the step's (fewer rows than the sampling cap, the same seed).
    model = fit_churn_model(
        _matrix(train), train["churned"].to_numpy(), FEATURES, missing_credit=MISSING_CREDIT, random_state=0
    )

    risk = model.risk(_matrix(valid))

    assert report["training"]["cut_off"] == "2011-06-13T00:00:00" and report["training"]["members"] == train.height
    assert report["validation"]["cut_off"] == "2011-09-11T00:00:00" and report["validation"]["members"] == valid.height
    assert report["scoring"]["members"] == 4_339  # every member with a completed order, as in RFM
    assert report["metrics"]["model"]["auc"] == pytest.approx(roc_auc_score(valid["churned"], risk), abs=1e-12)
    recency_auc = roc_auc_score(valid["churned"], valid["recency_days"])
    assert report["metrics"]["recency"]["auc"] == pytest.approx(recency_auc, abs=1e-12)


def test_labels_equal_an_independent_reading_of_the_orders(retail: Runtime) -> None:
    cut_off = RETAIL_AS_OF - HORIZON
    with retail.warehouse(read_only=True) as warehouse:
        orders = pl.from_arrow(warehouse.table("orders").to_pyarrow())
    assert isinstance(orders, pl.DataFrame)
    done = orders.filter((pl.col("status") == "completed") & pl.col("member_key").is_not_null())
    before = set(done.filter(pl.col("ordered_at") < cut_off)["member_key"])
    came_back = set(done.filter(pl.col("ordered_at").is_between(cut_off, RETAIL_AS_OF, closed="left"))["member_key"])

    labels = dict(_frame(retail, cut_off).select("member_key", "churned").iter_rows())

    assert labels.keys() == before
    assert {m for m, churned in labels.items() if churned == 0} == before & came_back


def test_brier_below_the_base_rate_and_a_calibration_table_of_deciles(retail_churn: ChurnResult) -> None:
    model = retail_churn.report()["metrics"]["model"]
    rate = model["churn_rate"]

    assert model["brier"] < rate * (1 - rate)
    deciles = model["calibration"]
    assert len(deciles) == 10 and sum(d["members"] for d in deciles) == model["members"]
    observed = [d["observed_rate"] for d in deciles]
    assert observed[-1] > 2 * observed[0]  # the riskiest tenth churns far more than the safest
    assert all(abs(d["mean_predicted"] - d["observed_rate"]) < 0.2 for d in deciles)


def test_p_alive_baseline_is_the_build_s_member_value(retail: Runtime) -> None:
    cut_off = RETAIL_AS_OF - HORIZON
    frame = _frame(retail, cut_off, labelled=False)
    with retail.warehouse(read_only=True) as warehouse:
        theirs = pl.from_arrow(member_value(warehouse.table("orders"), cut_off).table)
    assert isinstance(theirs, pl.DataFrame)
    seconds = (cut_off - cut_off.replace(year=1970, month=1, day=1)).total_seconds()

    ours = bgnbd_scores(
        frame["purchase_days"].to_numpy(), frame["first_day"].to_numpy(), frame["last_day"].to_numpy(), seconds, 90
    )

    assert ours is not None
    both = frame.select("member_key").with_columns(ours=ours.p_alive).join(theirs, on="member_key")
    assert both.height == frame.height
    # The same summary and likelihood; the optimiser meets the same optimum up to its tolerance.
    assert both["ours"].to_numpy() == pytest.approx(both["p_alive"].to_numpy(), abs=1e-6)


def test_reasons_are_feature_codes_and_lapsed_repeat_buyers_hear_about_recency(
    retail: Runtime, retail_churn: ChurnResult
) -> None:
    table = retail_churn.table
    assert table.schema.equals(TABLE_SCHEMA)
    scored = pl.from_arrow(table)
    assert isinstance(scored, pl.DataFrame)
    current = _frame(retail, RETAIL_AS_OF, labelled=False).join(scored, on="member_key")

    assert current.height == scored.height == 4_339
    assert scored["churn_risk"].is_between(0, 1).all()
    for column in ("reason_1", "reason_2", "reason_3"):
        assert set(scored[column].drop_nulls()) <= set(FEATURES)
    lapsed = current.filter((pl.col("recency_days") > 180) & (pl.col("purchase_days") >= 3))
    told = lapsed["reason_1"].is_in(list(RECENCY_CODES)).mean()
    assert lapsed.height >= 30 and told is not None and told >= 0.9
    # A member's reasons are distinct and follow one another (no gap before a present one).
    rows = scored.select("reason_1", "reason_2", "reason_3").rows()
    assert all(len({r for r in row if r}) == sum(r is not None for r in row) for row in rows)
    assert all(row[1] is None or row[0] is not None for row in rows)


def test_the_report_round_trips_through_churn_json(retail_churn: ChurnResult, tmp_path: Path) -> None:
    path = write_churn_report(retail_churn, tmp_path)

    report = read_churn_report(tmp_path)

    assert json.loads(path.read_text()) == retail_churn.report()
    assert report.status == "ok" and report.horizon_days == 90
    assert (
        report.metrics["model"] is not None
        and report.metrics["model"].auc == retail_churn.report()["metrics"]["model"]["auc"]
    )
    assert [f.feature for f in report.feature_importance][:1] == ["purchase_days"]
    with pytest.raises(NotFoundError):
        read_churn_report(tmp_path / "elsewhere")


def test_the_horizon_and_as_of_are_checked(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        tables = [warehouse.table(n) for n in ("orders", "order_lines", "products")]
        with pytest.raises(ValidationError) as horizon:
            churn_step(*tables, RETAIL_AS_OF, horizon_days=0)
        with pytest.raises(ValidationError) as as_of:
            churn_step(*tables, RETAIL_AS_OF + timedelta(hours=1))
    assert horizon.value.field == "horizon_days" and as_of.value.field == "as_of"
