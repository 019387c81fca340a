"""Low-stock warnings on hand-worked examples."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from patron.forecast.stock import REVIEW_DAYS, WARNING_SCHEMA, StockPosition, assess, warn_all

TODAY = date(2025, 3, 10)


def _position(on_hand: int, lead: int, safety: int, key: str = "s:P1") -> StockPosition:
    return StockPosition(product_key=key, title="Tea", on_hand=on_hand, lead_time_days=lead, safety_stock=safety)


def test_the_day_the_projection_crosses_the_threshold() -> None:
    # 100 on hand, 20 a day: 80, 60, 40, 20 (not under 20), then 0 at the end of day 5 (March 14)
    forecast = np.full(28, 20.0)

    warning = assess(_position(100, lead=5, safety=20), forecast, TODAY)

    assert warning is not None
    assert warning.crosses_on == date(2025, 3, 14)
    assert warning.projected_min == 0.0
    assert warning.days_of_cover == 5.0
    assert warning.suggested_order == 20 * (5 + REVIEW_DAYS) + 20 - 100  # 300: up to lead + review + safety
    assert (warning.threshold, warning.lead_time_days, warning.on_hand) == (20, 5, 100)


def test_no_warning_when_the_stock_lasts_the_lead_time() -> None:
    forecast = np.full(28, 20.0)

    assert assess(_position(100, lead=4, safety=20), forecast, TODAY) is None  # 20 left: not under 20
    assert assess(_position(100, lead=5, safety=0), forecast, TODAY) is None  # 0 left: not under 0


def test_uneven_demand_and_fractional_cover() -> None:
    forecast = np.array([5.0, 5.0, 30.0, 2.0, 2.0, 2.0, 2.0])  # a peak on day 3

    warning = assess(_position(25, lead=6, safety=4), forecast, TODAY)

    assert warning is not None
    assert warning.crosses_on == date(2025, 3, 12)  # 20, 15, then -15 at the end of day 3
    assert warning.projected_min == pytest.approx(25 - 5 - 5 - 30 - 2 - 2 - 2)
    assert warning.days_of_cover == pytest.approx(2 + 15 / 30)
    # lead 6 + review 14 = 20 days: the 7 forecast days (48 units), then their mean (48 / 7) for 13 days
    assert warning.suggested_order == int(np.ceil(48 + 13 * 48 / 7 + 4 - 25))


def test_already_under_the_threshold_crosses_today() -> None:
    warning = assess(_position(3, lead=0, safety=5), np.full(28, 1.0), TODAY)

    assert warning is not None
    assert warning.crosses_on == TODAY and warning.projected_min == 3.0


def test_a_lead_time_beyond_the_horizon_continues_at_the_mean_forecast() -> None:
    forecast = np.array([1.0, 3.0] * 14)  # 28 days, mean 2

    warning = assess(_position(70, lead=40, safety=0), forecast, TODAY)

    assert warning is not None
    assert warning.projected_min == pytest.approx(70 - 56 - 12 * 2.0)
    assert warning.days_of_cover == pytest.approx(28 + 14 / 2.0)
    assert warning.crosses_on == date(2025, 4, 14)  # 70 used up at the end of day 35, under 0 at the end of day 36


def test_no_demand_means_no_cover_figure_and_no_warning_unless_already_short() -> None:
    assert assess(_position(10, lead=7, safety=5), np.zeros(28), TODAY) is None
    short = assess(_position(2, lead=7, safety=5), np.zeros(0), TODAY)
    assert short is not None and short.days_of_cover is None and short.suggested_order == 3


def test_warn_all_orders_by_crossing_day_and_fits_the_artefact_schema() -> None:
    positions = [_position(100, 5, 20, "s:A"), _position(30, 5, 0, "s:B"), _position(500, 5, 0, "s:C")]
    forecasts = {"s:A": np.full(28, 20.0), "s:B": np.full(28, 20.0), "s:C": np.full(28, 20.0)}

    table = warn_all([*positions, _position(1, 3, 2, "s:unsold")], forecasts, TODAY)

    assert table.schema == WARNING_SCHEMA
    assert table.column("product_key").to_pylist() == ["s:unsold", "s:B", "s:A"]
    assert table.column("crosses_on").to_pylist() == [TODAY, date(2025, 3, 11), date(2025, 3, 14)]
