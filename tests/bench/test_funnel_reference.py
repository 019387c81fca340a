"""The pandas funnel of bench/funnel_events.py gives funnel_table's numbers: the benchmark compares like with like."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from patron.analytics.funnel import Step, funnel_table
from patron.warehouse.schema import TABLES

BENCH = Path(__file__).resolve().parents[2] / "bench"
VIEW_CART_BUY = [Step("view"), Step("cart"), Step("purchase")]
ORIGIN = np.datetime64("2024-05-01T00:00:00", "us")
CASES: dict[str, dict[str, Any]] = {
    "strict": {"window": timedelta(days=1)},
    "any order": {"window": timedelta(days=1), "order": "any"},
    "strict, fav excluded": {"window": timedelta(days=1), "exclusions": [Step("fav")]},
    "any order, two exclusions": {
        "window": timedelta(hours=12),
        "order": "any",
        "exclusions": [Step("fav"), Step("view", category="c")],
    },
    "strict by channel": {"window": timedelta(hours=12), "breakdown": "channel"},
    "any order by category, fav excluded": {
        "window": timedelta(days=1),
        "order": "any",
        "breakdown": "category",
        "exclusions": [Step("fav")],
    },
    "narrowed steps, entries in range": {
        "window": timedelta(days=1),
        "steps": [Step("view", category="a"), Step("cart"), Step("purchase", channel="app")],
        "start": date(2024, 5, 1),
        "end": date(2024, 5, 3),
    },
    "four steps, any order": {
        "window": timedelta(days=2),
        "order": "any",
        "steps": [Step("view"), Step("fav"), Step("cart"), Step("purchase")],
    },
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    """The reference and the benchmark script, imported the way the script imports its neighbours."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))
        reference, script = _load("_funnel_reference"), _load("funnel_events")
    sys.modules.pop("_common", None)
    sys.modules.pop("_funnel_reference", None)
    yield reference, script


def _random_events(seed: int, rows: int = 800, members: int = 80) -> pa.Table:
    """Events on a half-hour grid over two days: many ties, and steps exactly one window after entry."""
    rng = np.random.default_rng(seed)
    member = rng.integers(0, members + 1, rows)  # the last number stands for a guest
    slot = rng.integers(0, 2 * 48, rows)
    return pa.table(
        {
            "member_key": pa.array([f"m{i:03d}" for i in member], mask=member == members),
            "event_type": rng.choice(["view", "fav", "cart", "purchase"], rows, p=[0.45, 0.15, 0.25, 0.15]),
            "occurred_at": ORIGIN + slot * np.timedelta64(30, "m"),
            "category": rng.choice(["a", "b", "c"], rows),
            "channel": pa.array(rng.choice(["app", "web", "web"], rows), mask=rng.random(rows) < 0.1),
            "product_key": rng.choice(["p1", "p2"], rows),
        }
    )


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame["breakdown"] = [None if pd.isna(value) else str(value) for value in frame["breakdown"]]
    return frame


def _assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    ours, theirs = _normalised(ours), _normalised(theirs)
    for column in ("breakdown", "step", "step_name", "members"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    for column in ("conversion_from_previous", "conversion_from_first", "median_seconds"):
        assert ours[column].isna().tolist() == theirs[column].isna().tolist(), column
        assert ours[column].fillna(0.0).tolist() == pytest.approx(theirs[column].fillna(0.0).tolist(), rel=1e-12)


def _both(bench: tuple[ModuleType, ModuleType], events: pa.Table, case: dict[str, Any]) -> tuple[Any, Any]:
    reference, _ = bench
    options = {key: value for key, value in case.items() if key != "steps"}
    steps = case.get("steps", VIEW_CART_BUY)
    con = ibis.duckdb.connect()
    try:
        ours = funnel_table(con.create_table("events", events), steps, **options).to_pandas()
    finally:
        con.disconnect()
    return ours, reference.pandas_funnel(events.to_pandas(), steps, **options)


def test_reference_follows_the_docstring_example(bench: tuple[ModuleType, ModuleType]) -> None:
    reference, _ = bench
    minutes = [0, 5, 23 * 60, 0, 5, 24 * 60 + 1]  # after 10:00
    events = pd.DataFrame(
        {
            "member_key": ["a", "a", "a", "b", "b", "b"],
            "event_type": ["view", "cart", "purchase"] * 2,
            "occurred_at": pd.Timestamp("2024-05-01 10:00") + pd.to_timedelta(minutes, unit="min"),
        }
    )

    table = reference.pandas_funnel(events, VIEW_CART_BUY, window=timedelta(days=1))

    assert table["members"].tolist() == [2, 2, 1]  # b bought one minute too late
    assert table["median_seconds"].tolist() == [0.0, 300.0, 23 * 3600.0]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_reference_equals_funnel_table_on_random_events(
    bench: tuple[ModuleType, ModuleType], seed: int, case: dict[str, Any]
) -> None:
    events = _random_events(seed)

    ours, theirs = _both(bench, events, case)

    _assert_same(ours, theirs)
    reached = ours.groupby("step")["members"].sum()
    assert reached.iloc[0] > reached.iloc[-1] > 0  # a funnel with some depth


def test_generated_events_have_the_warehouse_schema_and_a_funnel_shape(bench: tuple[ModuleType, ModuleType]) -> None:
    _, script = bench

    events = script.generate_events(20_000, seed=7)

    assert events.schema.equals(TABLES["events"].to_pyarrow())
    assert events.num_rows == 20_000
    assert events.equals(script.generate_events(20_000, seed=7))
    kinds = events.column("event_type").value_counts().to_pylist()
    count = {row["values"]: row["counts"] for row in kinds}
    assert count["view"] > 5 * count["cart"] > 5 * count["purchase"] / 2 > 0


@pytest.mark.parametrize("variant", ["strict", "strict by channel", "any order", "strict, fav excluded"])
def test_reference_equals_funnel_table_on_generated_events(bench: tuple[ModuleType, ModuleType], variant: str) -> None:
    _, script = bench
    events = script.generate_events(50_000, seed=3)

    ours, theirs = _both(bench, events, {"window": script.WINDOW, **script.VARIANTS[variant]})

    assert ours["members"].iloc[-1] > 0
    _assert_same(ours, theirs)


def test_the_benchmark_notices_a_different_count_or_median(bench: tuple[ModuleType, ModuleType]) -> None:
    _, script = bench
    row = {
        "breakdown": "all",
        "step": 2,
        "step_name": "cart",
        "members": 10,
        "conversion_from_previous": 0.5,
        "conversion_from_first": 0.5,
        "median_seconds": 60.0,
    }

    assert script.differences([row], [dict(row)]) == []
    assert script.differences([row], [{**row, "members": 11}])
    assert script.differences([row], [{**row, "median_seconds": 61.0}])
    assert script.differences([row], [{**row, "median_seconds": None}])
    assert script.differences([row], [])
