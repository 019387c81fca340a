"""Recording impressions, clicks and purchases idempotently; the per-unit export; variant statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from patron.recs.comparison import VariantStats
from patron.recs.tracking import EventBatch, EventIn, record_events, unit_table, variant_stats
from patron.runtime import Runtime


def _event(key: str, unit: str, kind: str, variant: str = "control", revenue: float = 0.0) -> EventIn:
    return EventIn(
        placement="home",
        variant=variant,
        unit_id=unit,
        item_id="85123A",
        kind=kind,  # type: ignore[arg-type]
        revenue=revenue,
        idempotency_key=key,
        occurred_at=datetime(2011, 12, 1, tzinfo=UTC),
    )


EVENTS = [
    _event("1", "m1", "impression"),
    _event("2", "m1", "impression"),
    _event("3", "m1", "click"),
    _event("4", "m1", "purchase", revenue=12.5),
    _event("5", "m2", "impression"),
    _event("6", "m3", "impression", "treatment"),
    _event("7", "m3", "click", "treatment"),
    _event("8", "m4", "purchase", "treatment", revenue=3.0),  # a purchase without an impression
]


def test_a_resent_batch_is_counted_once(runtime: Runtime) -> None:
    first = record_events(runtime.store, EVENTS)
    again = record_events(runtime.store, [*EVENTS, _event("9", "m2", "click")])

    assert (first.received, first.recorded, first.duplicates) == (8, 8, 0)
    assert (again.received, again.recorded, again.duplicates) == (9, 1, 8)


def test_a_key_repeated_inside_one_batch_counts_once(runtime: Runtime) -> None:
    result = record_events(runtime.store, [_event("k", "m1", "impression"), _event("k", "m1", "impression")])

    assert (result.recorded, result.duplicates) == (1, 1)


def test_the_unit_table_has_one_row_per_placement_variant_and_unit(runtime: Runtime) -> None:
    record_events(runtime.store, EVENTS)

    rows = [(r.variant, r.unit_id, r.impressions, r.clicks, r.purchases, r.revenue) for r in unit_table(runtime.store)]

    assert rows == [
        ("control", "m1", 2, 1, 1, 12.5),
        ("control", "m2", 1, 0, 0, 0.0),
        ("treatment", "m3", 1, 1, 0, 0.0),
        ("treatment", "m4", 0, 0, 1, 3.0),
    ]
    assert unit_table(runtime.store, "elsewhere") == []


def test_variant_stats_count_exposed_units_and_their_conversions(runtime: Runtime) -> None:
    record_events(runtime.store, EVENTS)

    found = variant_stats(runtime.store, "home")

    assert found == {
        "control": VariantStats(
            "control", units=2, impressions=3, clicks=1, purchases=1, converted_units=1, revenue=12.5
        ),
        "treatment": VariantStats(
            "treatment", units=1, impressions=1, clicks=1, purchases=1, converted_units=0, revenue=3.0
        ),
    }


def test_revenue_is_kept_only_on_purchases(runtime: Runtime) -> None:
    record_events(runtime.store, [_event("c", "m1", "click", revenue=99.0)])

    assert unit_table(runtime.store)[0].revenue == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "view"},
        {"revenue": -1},
        {"idempotency_key": ""},
        {"placement": "x" * 65},
        {"surprise": 1},
    ],
)
def test_bad_events_are_refused(bad: dict[str, object]) -> None:
    fields = {**_event("1", "m1", "impression").model_dump(), **bad}

    with pytest.raises(ValidationError):
        EventIn.model_validate(fields)


def test_a_batch_holds_1_to_1000_events() -> None:
    one = _event("1", "m1", "impression").model_dump()
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": []})
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": [one] * 1_001})
