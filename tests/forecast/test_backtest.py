"""WAPE, leakage and the learned model against the baseline on series with planted structure."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from patron.forecast.backtest import backtest, forecast_at, wape
from patron.forecast.model import MIN_SALE_DAYS, SeriesSet
from tests.forecast.conftest import FAST, planted_panels


def test_wape_by_hand() -> None:
    actual = np.array([10.0, 0.0, 5.0, 5.0])
    forecast = np.array([8.0, 1.0, 5.0, 9.0])

    assert wape(actual, forecast) == pytest.approx((2 + 1 + 0 + 4) / 20)
    assert wape(actual, actual) == 0.0
    assert wape(np.zeros(3), np.ones(3)) is None  # no demand, no WAPE


def test_forecasts_do_not_change_when_the_future_does() -> None:
    shop = planted_panels(products=12, end=date(2024, 8, 31))
    panels = shop.panels()
    cut = panels[0].days - 28
    rng = np.random.default_rng(9)
    changed = [
        p.with_units(np.concatenate([p.units[:, :cut], rng.poisson(50.0, p.units[:, cut:].shape)], 1)) for p in panels
    ]

    before, _ = forecast_at([SeriesSet.of(p) for p in panels], cut, 28, FAST)
    after, model = forecast_at([SeriesSet.of(p) for p in changed], cut, 28, FAST)

    assert model.fitted
    for level in ("product", "category"):
        assert np.array_equal(before[level].series, after[level].series)
        assert np.array_equal(before[level].baseline, after[level].baseline)
        assert np.array_equal(before[level].forecast, after[level].forecast)
        assert not np.array_equal(before[level].forecast, before[level].baseline)


def test_the_learned_model_beats_the_baseline_on_planted_weekly_trend_and_campaign_structure() -> None:
    shop = planted_panels(products=30)  # ends 2024-11-30: the last window holds Double-11

    result = backtest([SeriesSet.of(p) for p in shop.panels()], 28, 3, FAST)

    report = result.as_dict()
    assert report["windows"] == 3
    levels = {score.level: score for score in result.levels}
    for level in ("product", "category"):
        total = levels[level].total
        assert total.model_wape is not None and total.baseline_wape is not None
        assert total.model_wape < 0.85 * total.baseline_wape, (level, total)
    double11 = levels["category"].windows[-1]
    assert (double11.start, double11.end) == (date(2024, 11, 3), date(2024, 12, 1))
    assert double11.model_wape is not None and double11.baseline_wape is not None
    assert double11.model_wape < 0.7 * double11.baseline_wape


def test_slow_movers_are_left_out_of_the_product_level() -> None:
    shop = planted_panels(products=6, end=date(2024, 3, 31))
    units = shop.units.copy()
    units[0, -91:] = 0.0
    units[0, -91::13] = 1.0  # seven sale days in the last 91: too few
    units[1, -91:] = 0.0
    units[1, -91::11] = 1.0  # nine: enough
    products, categories = shop.panels()
    panels = [products.with_units(units), categories]

    forecasts, _ = forecast_at([SeriesSet.of(p) for p in panels], panels[0].days, 28, FAST)

    chosen = forecasts["product"].series.tolist()
    assert 0 not in chosen and 1 in chosen
    assert (units[0, -91:] > 0).sum() < MIN_SALE_DAYS <= (units[1, -91:] > 0).sum()
