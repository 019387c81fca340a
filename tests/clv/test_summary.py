"""Frequency / recency / T from transactions: a hand-computed shop, the CDNOW sample, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.clv import bgnbd
from patron.clv.summary import (
    CustomerSummary,
    calibration_and_holdout,
    evaluate_holdout,
    summary_from_transactions,
)
from patron.errors import ValidationError
from tests.conftest import shared_data

SHOP = pd.DataFrame(
    [
        ("A", "2024-01-01 10:00", 10.0),
        ("A", "2024-01-01 18:00", 5.0),  # same day: one purchase period, spend added up
        ("A", "2024-01-08 09:00", 20.0),
        ("A", "2024-01-15 12:00", 30.0),
        ("B", "2024-01-10 08:00", 40.0),
        ("C", "2024-01-20 08:00", 5.0),
        ("C", "2024-02-05 08:00", 7.0),  # after the observation end
        ("D", "2024-02-10 08:00", 9.0),  # first purchase after the observation end: not a customer yet
    ],
    columns=["customer_id", "date", "amount"],
)


def test_a_hand_computed_shop_in_weeks_and_days() -> None:
    weeks = summary_from_transactions(SHOP, monetary_col="amount", observation_end="2024-01-29")
    days = summary_from_transactions(SHOP, observation_end="2024-01-29", time_unit="days")

    assert list(weeks.index) == ["A", "B", "C"]
    assert weeks["frequency"].tolist() == [2, 0, 0]
    np.testing.assert_allclose(weeks["recency"], [2.0, 0.0, 0.0])
    np.testing.assert_allclose(weeks["T"], [4.0, 19 / 7, 9 / 7])
    np.testing.assert_allclose(weeks["monetary_value"], [25.0, 0.0, 0.0])  # mean of the repeat days 20, 30
    np.testing.assert_allclose(days["recency"], [14.0, 0.0, 0.0])
    np.testing.assert_allclose(days["T"], [28.0, 19.0, 9.0])
    assert "monetary_value" not in days.columns


def test_the_observation_end_defaults_to_the_last_purchase_day() -> None:
    summary = summary_from_transactions(SHOP, time_unit="days")

    assert summary.loc["D", "T"] == 0.0 and summary.loc["C", "frequency"] == 1


def test_calibration_and_holdout_on_the_hand_computed_shop() -> None:
    split = calibration_and_holdout(
        SHOP, calibration_end="2024-01-10", observation_end="2024-01-31", monetary_col="amount"
    )

    assert list(split.index) == ["A", "B"]  # C and D first bought after the calibration period
    assert split["frequency_cal"].tolist() == [1, 0]
    np.testing.assert_allclose(split["recency_cal"], [1.0, 0.0])
    np.testing.assert_allclose(split["T_cal"], [9 / 7, 0.0])
    np.testing.assert_allclose(split["monetary_value_cal"], [20.0, 0.0])
    assert split["frequency_holdout"].tolist() == [1, 0]
    assert split["duration_holdout"].tolist() == [3.0, 3.0]


def test_evaluate_holdout_by_hand() -> None:
    evaluation = evaluate_holdout([0.5, 1.0, 2.0, 3.0], [0, 2, 2, 5], [0, 0, 1, 9], max_bucket=7)

    assert [(b.frequency, b.customers) for b in evaluation.buckets] == [(0, 2), (1, 1), (7, 1)]
    assert [(b.predicted_mean, b.actual_mean) for b in evaluation.buckets] == [(0.75, 1.0), (2.0, 2.0), (3.0, 5.0)]
    assert (evaluation.predicted_total, evaluation.actual_total, evaluation.total_error) == (6.5, 9.0, -2.5)
    assert evaluation.mean_absolute_error == pytest.approx(0.875)


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """CDNOW_sample.txt: original id, customer index 1..2357, date YYYYMMDD, CDs, dollars (CRLF, no header)."""
    raw = pd.read_csv(
        shared_data("cdnow/CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["original_id", "customer_id", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def test_cdnow_sample_reproduces_the_published_summary(cdnow_transactions: pd.DataFrame) -> None:
    """Fader, Hardie & Lee (2005) CDNOW summary (lifetimes' cdnow_customers_summary.csv): weeks, end 1997-09-30.

    Every one of the 2,357 customers, not only a few: frequency exactly, recency and T to the file's two
    decimals, zbar to its rounding. Purchases on the same day count once.
    """
    published = pd.read_csv(shared_data("cdnow/cdnow_customers_summary.csv"), index_col="ID")
    with_spend = pd.read_csv(shared_data("cdnow/cdnow_customers_summary_with_transactions.csv"), index_col="ID")

    ours = summary_from_transactions(cdnow_transactions, monetary_col="dollars", observation_end="1997-09-30")

    assert ours.index.tolist() == published.index.tolist()
    assert (ours["frequency"] == published["frequency"]).all()
    np.testing.assert_array_equal(ours["recency"].round(2), published["recency"])
    np.testing.assert_array_equal(ours["T"].round(2), published["T"])
    np.testing.assert_allclose(ours["monetary_value"], with_spend["zbar"], atol=0.005 + 1e-9)
    assert ours.loc[1].tolist() == pytest.approx([2, 213 / 7, 272 / 7, (29.73 + 14.96) / 2])


def test_cdnow_calibration_and_holdout_evaluation(cdnow_transactions: pd.DataFrame) -> None:
    """Fader, Hardie & Lee (2005), figure 4 layout: 39-week calibration, 39-week holdout, buckets 0..7+."""
    split = calibration_and_holdout(
        cdnow_transactions, calibration_end="1997-09-30", observation_end="1998-06-30", monetary_col="dollars"
    )
    calibration = CustomerSummary(split["frequency_cal"], split["recency_cal"], split["T_cal"])
    params = bgnbd.fit(calibration).params
    predicted = bgnbd.conditional_expected_purchases(
        params, split["duration_holdout"], calibration.frequency, calibration.recency, calibration.T
    )

    evaluation = evaluate_holdout(predicted, split["frequency_holdout"], split["frequency_cal"])

    assert len(split) == 2357 and set(split["duration_holdout"]) == {39.0}
    assert [b.frequency for b in evaluation.buckets] == list(range(8))
    assert evaluation.buckets[0].customers == 1411 and sum(b.customers for b in evaluation.buckets) == 2357
    assert evaluation.actual_total == split["frequency_holdout"].sum()
    assert evaluation.total_error == pytest.approx(evaluation.predicted_total - evaluation.actual_total)
    assert 0 < evaluation.mean_absolute_error < 2


def test_lifetimes_and_hardie_column_names_and_an_unnamed_index_are_read() -> None:
    lifetimes = pd.DataFrame({"Unnamed: 0": [7, 8], "frequency": [1, 0], "recency": [2.0, 0.0], "T": [3.0, 4.0]})
    hardie = pd.DataFrame({"ID": [7, 8], "x": [1, 0], "t_x": [2.0, 0.0], "T": [3.0, 4.0], "zbar": [9.5, 0.0]})

    one = CustomerSummary.from_frame(lifetimes)
    two = CustomerSummary.from_frame(hardie, monetary=True)

    np.testing.assert_array_equal(one.recency, two.recency)
    assert one.monetary_value is None and two.monetary_value is not None and two.monetary_value[0] == 9.5


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValidationError) as raised:
        CustomerSummary.from_frame(pd.DataFrame({"frequency": [1], "T": [3.0]}))

    assert raised.value.field == "recency" and "recency" in str(raised.value)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "field"),
    [
        ([], [], [], "frequency"),
        ([1, np.nan], [1.0, 0.0], [2.0, 2.0], "frequency"),
        ([1, 0], [np.nan, 0.0], [2.0, 2.0], "recency"),
        ([1, 0], [1.0, 0.0], [2.0, np.inf], "T"),
        ([1, 0], [-1.0, 0.0], [2.0, 2.0], "recency"),
        ([1, 0], [3.0, 0.0], [2.0, 2.0], "recency"),
        ([0, 0], [1.0, 0.0], [2.0, 2.0], "recency"),
        ([-1, 0], [0.0, 0.0], [2.0, 2.0], "frequency"),
        ([1.5, 0], [1.0, 0.0], [2.0, 2.0], "frequency"),
        ([1, 0], [1.0, 0.0], [2.0], "T"),
    ],
    ids=[
        "empty",
        "NaN frequency",
        "NaN recency",
        "infinite T",
        "negative recency",
        "recency > T",
        "recency without repeat purchases",
        "negative frequency",
        "fractional frequency",
        "lengths differ",
    ],
)
def test_degenerate_summaries_are_rejected_naming_the_field(
    frequency: list[float],
    recency: list[float],
    T: list[float],  # noqa: N803
    field: str,
) -> None:
    with pytest.raises(ValidationError) as raised:
        CustomerSummary(frequency, recency, T)

    assert raised.value.field == field


def test_nan_spend_is_rejected_naming_monetary_value() -> None:
    with pytest.raises(ValidationError) as raised:
        CustomerSummary([1], [1.0], [2.0], [np.nan])

    assert raised.value.field == "monetary_value"


def test_bad_transaction_frames_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError) as missing:
        summary_from_transactions(SHOP.drop(columns="date"))
    with pytest.raises(ValidationError) as nothing_yet:
        summary_from_transactions(SHOP, observation_end="2023-12-31")
    with pytest.raises(ValidationError) as backwards:
        calibration_and_holdout(SHOP, calibration_end="2024-01-31", observation_end="2024-01-10")

    assert (missing.value.field, nothing_yet.value.field, backwards.value.field) == (
        "date",
        "date",
        "observation_end",
    )
