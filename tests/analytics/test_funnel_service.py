"""The funnel service: step syntax, the report against funnel_table, breakdowns that add up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import polars as pl
import pytest

from patron.analytics.artefacts import BuildReader, reader_for
from patron.analytics.build import build_profiles
from patron.analytics.funnel import Step, funnel_table
from patron.analytics.schemas import FunnelReport
from patron.analytics.service import (
    FUNNEL_BREAKDOWNS,
    event_types,
    funnel_report,
    parse_steps,
    repurchase_report,
)
from patron.demo import generate_shop
from patron.errors import ValidationError
from patron.ingest.service import import_batch
from patron.runtime import Runtime
from tests.conftest import make_settings

D = datetime
DAY = timedelta(days=1)
VIEW_CART_BUY = [Step("view"), Step("cart"), Step("purchase")]


def _events(rows: list[tuple[str, str, datetime, str, str]]) -> pl.DataFrame:
    """Events from (member, event type, time, category, channel)."""
    return pl.DataFrame(
        {
            "member_key": [r[0] for r in rows],
            "session_id": [None] * len(rows),
            "product_key": ["p1"] * len(rows),
            "category": [r[3] for r in rows],
            "event_type": [r[1] for r in rows],
            "occurred_at": [r[2] for r in rows],
            "channel": [r[4] for r in rows],
        },
        schema_overrides={"session_id": pl.String},
    )


EVENTS = _events(
    [
        ("a", "view", D(2021, 1, 1, 10), "shoes", "web"),
        ("a", "cart", D(2021, 1, 1, 10, 5), "shoes", "web"),
        ("a", "purchase", D(2021, 1, 1, 11), "shoes", "app"),
        ("b", "view", D(2021, 1, 1, 12), "bags", "app"),
        ("b", "purchase", D(2021, 1, 1, 13), "bags", "app"),
        ("b", "cart", D(2021, 1, 1, 14), "bags", "app"),
        ("c", "view", D(2021, 1, 2, 9), "shoes", "web"),
        ("c", "cart", D(2021, 1, 2, 9, 30), "shoes", "web"),
        ("d", "view", D(2021, 1, 2, 8), "books", "store"),
        ("e", "view", D(2021, 1, 3, 8), "shoes", "app"),
        ("e", "remove", D(2021, 1, 3, 8, 30), "shoes", "app"),
        ("e", "cart", D(2021, 1, 3, 9), "shoes", "app"),
        ("e", "purchase", D(2021, 1, 3, 9, 30), "shoes", "app"),
        ("f", "view", D(2021, 1, 4, 8), "bags", "web"),
        ("f", "cart", D(2021, 1, 4, 9), "bags", "web"),
        ("f", "purchase", D(2021, 1, 4, 10), "bags", "web"),
    ]
)
# f bought nothing yet in this build: no profile, so no segment
PROFILES = pl.DataFrame(
    {
        "member_key": ["a", "b", "c", "d", "e"],
        "segment": ["champions", "champions", "hibernating", "at_risk", "hibernating"],
        "lifecycle": ["active", "new", "churned", "dormant", "churned"],
    }
)
ORDERS = pl.DataFrame(
    {
        "order_key": ["o1", "o2", "o3", "o4", "o5"],
        "member_key": ["a", "a", "b", "b", None],
        "ordered_at": [D(2021, 1, 5), D(2021, 3, 2), D(2021, 1, 20), D(2021, 1, 25), D(2021, 1, 1)],
        "status": ["completed"] * 5,
        "amount": [10.0, 30.0, 20.0, 5.0, 50.0],
    }
)


@pytest.fixture
def reader(duck: ibis.BaseBackend) -> BuildReader:
    """A BuildReader over small tables of the artefact shapes."""
    duck.create_table("events", EVENTS)
    duck.create_table("profiles", PROFILES)
    duck.create_table("orders", ORDERS)
    return BuildReader(manifest={"build_id": 1, "as_of": "2021-06-01", "path": "."}, con=duck)


def _members(report: FunnelReport) -> list[int]:
    return [step.members for step in report.overall]


def _groups(report: FunnelReport) -> dict[str | None, list[int]]:
    return {group.value: [step.members for step in group.steps] for group in report.groups}


def _assert_groups_add_up(report: FunnelReport) -> None:
    for k, whole in enumerate(report.overall):
        assert sum(group.steps[k].members for group in report.groups) == whole.members, (report.breakdown, k)


# --- step syntax ---------------------------------------------------------------------


def test_steps_are_event_types_optionally_narrowed() -> None:
    steps = parse_steps(" view:category=Books & Music , cart:channel=app:product=p-42,purchase ")

    assert steps == [
        Step("view", category="Books & Music"),
        Step("cart", channel="app", product_key="p-42"),
        Step("purchase"),
    ]
    assert [s.name for s in steps] == ["view[category=Books & Music]", "cart[channel=app,product_key=p-42]", "purchase"]
    assert parse_steps("cart:product=demo:P0042:channel=app") == [Step("cart", channel="app", product_key="demo:P0042")]
    assert parse_steps("", field="exclude", required=False) == []
    assert parse_steps("view,,") == [Step("view")]  # empty pieces are skipped; one step is a funnel too


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one step"),
        ("view,add to cart", "step 2 ('add to cart')"),
        ("view:colour=red", "filters are category=..., channel=... or product=..."),
        ("view:category", "filters are category"),
        ("view:category=", "category needs a value"),
        ("view:category=a:category=b", "category is given twice"),
        (",".join(["view"] * 11), "at most 10 steps"),
    ],
)
def test_bad_steps_are_rejected_naming_the_parameter(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        parse_steps(text, field="query.steps")
    assert caught.value.field == "query.steps"


# --- the report ------------------------------------------------------------------------


def test_the_report_equals_funnel_table(reader: BuildReader) -> None:
    exclusions = [Step("remove")]
    report = funnel_report(reader, VIEW_CART_BUY, DAY, "strict", exclusions, "channel", date(2021, 1, 1))

    whole = funnel_table(
        reader.table("events"), VIEW_CART_BUY, window=DAY, exclusions=exclusions, start=date(2021, 1, 1)
    ).to_pyarrow()
    by_channel = funnel_table(
        reader.table("events"), VIEW_CART_BUY, window=DAY, exclusions=exclusions, breakdown="channel"
    ).to_pyarrow()

    columns = ("step", "members", "conversion_from_previous", "conversion_from_first", "median_seconds")
    assert [step.model_dump(include=set(columns)) for step in report.overall] == [
        {c: row[c] for c in columns} for row in whole.to_pylist()
    ]
    assert [s.name for s in report.overall] == report.steps == ["view", "cart", "purchase"]
    assert _members(report) == [5, 4, 2]  # e removed an item before buying: gone; b bought before carting
    expected = {}
    for row in by_channel.to_pylist():
        expected.setdefault(row["breakdown"], []).append(row["members"])
    assert _groups(report) == expected == {"web": [3, 3, 2], "app": [1, 1, 0], "store": [1, 0, 0]}
    web = report.groups[0]
    assert web.steps[1].conversion_from_previous == pytest.approx(1.0)
    assert web.steps[2].conversion_from_first == pytest.approx(2 / 3)
    assert web.steps[2].median_seconds == pytest.approx(3600 * 1.5)  # a after 1 h, f after 2 h
    assert (report.exclusions, report.window_hours, report.order) == (["remove"], 24.0, "strict")


@pytest.mark.parametrize("breakdown", [b for b in FUNNEL_BREAKDOWNS if b != "none"])
def test_every_breakdown_adds_up_to_the_whole(reader: BuildReader, breakdown: str) -> None:
    report = funnel_report(reader, VIEW_CART_BUY, 2 * DAY, "any", breakdown=breakdown)

    assert _members(report) == [6, 5, 4]
    _assert_groups_add_up(report)
    assert [g.steps[0].members for g in report.groups] == sorted(
        (g.steps[0].members for g in report.groups), reverse=True
    )


def test_member_attributes_come_from_the_profiles(reader: BuildReader) -> None:
    report = funnel_report(reader, VIEW_CART_BUY, DAY, breakdown="segment")

    # f has no profile: counted under None, not dropped
    assert _groups(report) == {"champions": [2, 2, 1], "hibernating": [2, 2, 1], "at_risk": [1, 0, 0], None: [1, 1, 1]}


def test_values_beyond_the_limit_merge_into_other(reader: BuildReader) -> None:
    report = funnel_report(reader, VIEW_CART_BUY, DAY, breakdown="lifecycle", max_groups=2)

    assert len(report.groups) == 2
    first, other = report.groups
    assert (first.value, first.other, other.value, other.other) == ("churned", False, None, True)
    assert [s.members for s in other.steps] == [4, 3, 2]  # active a, new b, dormant d, unprofiled f
    assert [s.median_seconds for s in other.steps] == [None, None, None]
    assert [s.conversion_from_first for s in other.steps] == pytest.approx([1.0, 0.75, 0.5])
    _assert_groups_add_up(report)


def test_a_step_narrowed_by_category_and_a_date_range(reader: BuildReader) -> None:
    steps = parse_steps("view:category=shoes,cart")

    report = funnel_report(reader, steps, DAY, start=date(2021, 1, 2), end=date(2021, 1, 4))

    assert report.steps == ["view[category=shoes]", "cart"]
    assert _members(report) == [2, 2]  # c and e enter in range; a is before it, f after
    assert (report.start, report.end) == (date(2021, 1, 2), date(2021, 1, 4))


def test_nobody_entering_gives_zeros_for_every_step(reader: BuildReader) -> None:
    report = funnel_report(reader, [Step("signup"), Step("view")], DAY, breakdown="channel")

    assert [(s.name, s.members, s.conversion_from_first, s.median_seconds) for s in report.overall] == [
        ("signup", 0, 0.0, None),
        ("view", 0, 0.0, None),
    ]
    assert report.groups == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"steps": []}, "steps"),
        ({"window": timedelta(0)}, "window"),
        ({"window": timedelta(days=367)}, "window"),
        ({"order": "sideways"}, "order"),
        ({"breakdown": "gender"}, "breakdown"),
        ({"exclusions": [Step("x")] * 11}, "exclude"),
        ({"start": date(2021, 2, 1), "end": date(2021, 1, 1)}, "start"),
    ],
)
def test_bad_arguments_name_the_field(reader: BuildReader, changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"steps": VIEW_CART_BUY, "window": DAY, **changes}

    with pytest.raises(ValidationError) as caught:
        funnel_report(reader, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_event_types_most_frequent_first(reader: BuildReader) -> None:
    counts = event_types(reader)

    assert [(c.event_type, c.events, c.members) for c in counts] == [
        ("view", 6, 6),
        ("cart", 5, 5),
        ("purchase", 4, 4),
        ("remove", 1, 1),
    ]


def test_repurchase_report(reader: BuildReader) -> None:
    report = repurchase_report(reader)

    # gaps: a 56 days, b 5 days; the guest's order never counts
    assert report.intervals == 2
    assert report.mean_days == pytest.approx(30.5)
    assert report.percentiles["p50"] == pytest.approx(30.5)
    assert set(report.percentiles) == {"p25", "p50", "p75", "p90"}
    assert [(b.lower_days, b.intervals) for b in report.bins if b.intervals] == [(1.0, 1), (30.0, 1)]
    assert report.bins[-1].upper_days is None
    assert report.bins[-1].cumulative_share == pytest.approx(1.0)


# --- a real build --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A small demo shop, imported and built (its events are exported with the build)."""
    home: Path = tmp_path_factory.mktemp("funnel-demo") / "home"
    rt = Runtime(make_settings(home))
    home.mkdir(parents=True)
    rt.store.migrate()
    import_batch(rt, "demo", "demo-300-3", lambda: generate_shop(300, 3))
    build_profiles(rt, with_models=False)
    yield rt
    reader_for(rt.settings.artefact_dir).con.disconnect()
    rt.close()


@pytest.mark.slow
def test_a_built_shop_breaks_down_consistently(demo: Runtime) -> None:
    reader = reader_for(demo.settings.artefact_dir)
    whole = funnel_table(reader.table("events"), VIEW_CART_BUY, window=DAY).to_pyarrow().to_pylist()

    for breakdown in FUNNEL_BREAKDOWNS:
        report = funnel_report(reader, VIEW_CART_BUY, DAY, breakdown=breakdown)
        assert _members(report) == [row["members"] for row in whole], breakdown
        if breakdown != "none":
            _assert_groups_add_up(report)
            assert len(report.groups) >= 2, breakdown
    assert whole[0]["members"] > whole[1]["members"] > whole[2]["members"] > 0
