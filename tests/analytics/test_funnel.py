"""Funnels: hand-made cases, Taobao against an independent polars count, DuckDB = PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import ibis
import polars as pl
import pytest

from patron.analytics.funnel import FunnelOrder, Step, funnel_table
from patron.errors import ValidationError
from patron.ingest.service import run_import
from patron.runtime import Runtime
from tests.conftest import make_settings, shared_data

D = datetime
VIEW_CART_BUY = [Step("view"), Step("cart"), Step("purchase")]
START, END = date(2017, 11, 25), date(2017, 12, 2)
SHANGHAI = 8 * 3600  # Asia/Shanghai is UTC+8 all year (no daylight saving since 1991)


@pytest.fixture(scope="module")
def taobao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The Taobao prefix imported once for this module (read-only for tests)."""
    path = shared_data("taobao_userbehavior/UserBehavior_first_users_prefix.csv.gz")
    rt = Runtime(make_settings(tmp_path_factory.mktemp("taobao")))
    rt.store.migrate()
    run_import(rt, "taobao", path)
    yield rt
    rt.close()


def _events(rows: list[tuple[str | None, str, datetime, str, str]]) -> pl.DataFrame:
    """Events from (member, event type, time, category, channel)."""
    return pl.DataFrame(
        {
            "event_key": [f"e{i}" for i in range(len(rows))],
            "member_key": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "occurred_at": [r[2] for r in rows],
            "category": [r[3] for r in rows],
            "channel": [r[4] for r in rows],
            "product_key": ["p"] * len(rows),
            "session_id": [None] * len(rows),
        },
        schema_overrides={"member_key": pl.String, "session_id": pl.String},
    )


SMALL = _events(
    [
        # a: view, cart, buy within a day -> converts fully
        ("a", "view", D(2021, 1, 1, 10), "shoes", "web"),
        ("a", "cart", D(2021, 1, 1, 10, 5), "shoes", "web"),
        ("a", "purchase", D(2021, 1, 2, 10), "shoes", "app"),  # exactly 24 h after entry: inside
        # b: buys before carting -> strict stops at cart, any order reaches purchase
        ("b", "view", D(2021, 1, 1, 12), "bags", "app"),
        ("b", "purchase", D(2021, 1, 1, 13), "bags", "app"),
        ("b", "cart", D(2021, 1, 1, 14), "bags", "app"),
        # c: cart at the very second of the view does not count as after it
        ("c", "view", D(2021, 1, 1, 9), "shoes", "web"),
        ("c", "cart", D(2021, 1, 1, 9), "shoes", "web"),
        # d: cart too late for a 1-day window
        ("d", "view", D(2021, 1, 1, 8), "bags", "web"),
        ("d", "cart", D(2021, 1, 2, 8, 0, 1), "bags", "web"),
        # e: views, removes the item (an exclusion event), carts and buys
        ("e", "view", D(2021, 1, 1, 8), "shoes", "app"),
        ("e", "remove", D(2021, 1, 1, 8, 30), "shoes", "app"),
        ("e", "cart", D(2021, 1, 1, 9), "shoes", "app"),
        ("e", "purchase", D(2021, 1, 1, 9, 30), "shoes", "app"),
        # f: removes after buying (outside entry..conversion), entered before the range too
        ("f", "view", D(2020, 12, 31, 8), "bags", "web"),
        ("f", "view", D(2021, 1, 1, 8), "bags", "web"),
        ("f", "cart", D(2021, 1, 1, 9), "bags", "web"),
        ("f", "purchase", D(2021, 1, 1, 10), "bags", "web"),
        ("f", "remove", D(2021, 1, 1, 11), "bags", "web"),
        # a guest view never enters
        (None, "view", D(2021, 1, 1, 8), "bags", "web"),
    ]
)
DAY = timedelta(days=1)


def _counts(table: ibis.Table) -> list[tuple[str, int]]:
    return [(str(b), int(n)) for b, n in table.to_polars().select("breakdown", "members").iter_rows()]


def test_strict_and_any_order(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)

    strict = funnel_table(events, VIEW_CART_BUY, window=DAY, start=date(2021, 1, 1)).to_polars()
    any_order = funnel_table(events, VIEW_CART_BUY, window=DAY, order="any", start=date(2021, 1, 1))

    assert strict["members"].to_list() == [6, 4, 3]  # cart: a, b, e, f; purchase: a, e, f
    assert strict["conversion_from_previous"].to_list() == pytest.approx([1.0, 4 / 6, 3 / 4])
    assert strict["conversion_from_first"].to_list() == pytest.approx([1.0, 4 / 6, 3 / 6])
    # seconds from entry to cart: a 300, b 7200, e 3600, f 3600; to purchase: a 86400, e 5400, f 7200
    assert strict["median_seconds"].to_list() == [0.0, 3600.0, 7200.0]
    assert _counts(any_order) == [("all", 6), ("all", 4), ("all", 4)]  # b now reaches purchase


def test_an_exclusion_between_entry_and_conversion_removes_the_member(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)

    table = funnel_table(events, VIEW_CART_BUY, window=DAY, exclusions=[Step("remove")], start=date(2021, 1, 1))

    assert _counts(table) == [("all", 5), ("all", 3), ("all", 2)]  # e is gone from every step; f stays


def test_breakdown_by_an_event_column_uses_the_entry_event(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)

    table = funnel_table(events, VIEW_CART_BUY, window=DAY, breakdown="channel", start=date(2021, 1, 1))

    # a entered on web and bought in the app: counted under web.
    assert _counts(table) == [("app", 2), ("app", 2), ("app", 1), ("web", 4), ("web", 2), ("web", 2)]


def test_breakdown_by_a_member_attribute_joined_by_the_caller(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)
    members = duck.create_table("members", pl.DataFrame({"member_key": list("abcdef"), "gender": list("ffmmfm")}))
    joined = events.left_join(members, "member_key").select(events, members.gender)

    table = funnel_table(joined, VIEW_CART_BUY[:2], window=DAY, breakdown="gender", start=date(2021, 1, 1))

    assert _counts(table) == [("f", 3), ("f", 3), ("m", 3), ("m", 1)]


def test_steps_can_be_narrowed_by_category(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)
    steps = [Step("view", category="shoes"), Step("cart"), Step("purchase", category="shoes")]

    table = funnel_table(events, steps, window=DAY).to_polars()

    assert table["step_name"].to_list() == ["view[category=shoes]", "cart", "purchase[category=shoes]"]
    assert table["members"].to_list() == [3, 2, 2]  # a, c, e enter; c's cart is not after its view


def test_a_funnel_needs_steps_and_a_positive_window(duck: ibis.BaseBackend) -> None:
    events = duck.create_table("events", SMALL)

    with pytest.raises(ValidationError):
        funnel_table(events, [], window=DAY)
    with pytest.raises(ValidationError):
        funnel_table(events, VIEW_CART_BUY, window=timedelta(0))


def _raw_taobao() -> pl.DataFrame:
    """Independent reading of the CSV, times as Shanghai wall clock."""
    raw = pl.read_csv(
        shared_data("taobao_userbehavior/UserBehavior_first_users_prefix.csv.gz"),
        has_header=False,
        new_columns=["user_id", "item_id", "category_id", "behavior", "ts"],
        schema_overrides={"user_id": pl.String, "behavior": pl.String, "ts": pl.Int64},
    )
    return raw.select("user_id", "behavior", at=pl.from_epoch(pl.col("ts") + SHANGHAI, time_unit="s"))


def _first_after(raw: pl.DataFrame, behavior: str, users: pl.DataFrame, after: str, window: timedelta) -> pl.Series:
    """Per user of ``users``: first ``behavior`` strictly after column ``after`` and at most ``window`` after t0."""
    hits = raw.filter(pl.col("behavior") == behavior).join(users, on="user_id")
    hits = hits.filter((pl.col("at") > pl.col(after)) & (pl.col("at") <= pl.col("t0") + window))
    found = hits.group_by("user_id").agg(pl.col("at").min().alias("found"))
    return users.join(found, on="user_id", how="left")["found"]


def _polars_funnel(order: str, window: timedelta) -> list[int]:
    raw = _raw_taobao()
    lo, hi = datetime.combine(START, datetime.min.time()), datetime.combine(END, datetime.min.time())
    views = raw.filter((pl.col("behavior") == "pv") & (pl.col("at") >= lo) & (pl.col("at") < hi))
    users = views.group_by("user_id").agg(pl.col("at").min().alias("t0")).sort("user_id")
    if order == "strict":
        users = users.with_columns(cart=_first_after(raw, "cart", users, "t0", window))
        users = users.with_columns(buy=_first_after(raw, "buy", users, "cart", window))
        return [users.height, users["cart"].count(), users["buy"].count()]
    users = users.with_columns(
        cart=_first_after(raw, "cart", users, "t0", window), buy=_first_after(raw, "buy", users, "t0", window)
    )
    both = users.filter(pl.col("cart").is_not_null() & pl.col("buy").is_not_null())
    return [users.height, users["cart"].count(), both.height]


@pytest.mark.slow
@pytest.mark.parametrize(("order", "window"), [("strict", timedelta(days=1)), ("any", timedelta(days=3))])
def test_taobao_funnel_equals_an_independent_polars_count(
    taobao: Runtime, order: FunnelOrder, window: timedelta
) -> None:
    expected = _polars_funnel(order, window)

    with taobao.warehouse(read_only=True) as warehouse:
        events = warehouse.table("events")
        table = funnel_table(events, VIEW_CART_BUY, window=window, order=order, start=START, end=END).to_polars()

    assert table["members"].to_list() == expected
    assert expected[0] > expected[1] > expected[2] > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_funnel_equals_on_duckdb_and_postgres(taobao: Runtime, postgres: ibis.BaseBackend) -> None:
    with taobao.warehouse(read_only=True) as warehouse:
        postgres.create_table("wh_funnel_events", warehouse.table("events").to_pyarrow(), overwrite=True)
        postgres.raw_sql("ANALYZE wh_funnel_events").close()
        duck_results = _funnel_results(warehouse.table("events"))
    try:
        pg_results = _funnel_results(postgres.table("wh_funnel_events"))
    finally:
        postgres.drop_table("wh_funnel_events", force=True)

    for duck_frame, pg_frame in zip(duck_results, pg_results, strict=True):
        exact = ["breakdown", "step", "step_name", "members"]
        assert pg_frame.select(exact).equals(duck_frame.select(exact))
        for column in ("conversion_from_previous", "conversion_from_first", "median_seconds"):
            assert pg_frame[column].is_null().equals(duck_frame[column].is_null())
            expected = duck_frame[column].fill_null(0.0).to_list()
            assert pg_frame[column].fill_null(0.0).to_list() == pytest.approx(expected, rel=1e-12)


def _funnel_results(events: ibis.Table) -> list[pl.DataFrame]:
    fav = [Step("fav")]
    return [
        funnel_table(events, VIEW_CART_BUY, window=timedelta(days=1), start=START, end=END).to_polars(),
        funnel_table(events, VIEW_CART_BUY, window=timedelta(days=3), order="any", exclusions=fav).to_polars(),
        funnel_table(events, VIEW_CART_BUY[:2], window=timedelta(hours=6), breakdown="category").to_polars(),
    ]
