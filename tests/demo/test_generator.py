"""The demo shop generator: shape, determinism and the behaviour it models."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray

from patron.demo import BGNBD_A, BGNBD_ALPHA, BGNBD_B, BGNBD_R, generate_shop
from patron.demo.catalog import catalog_size
from patron.ingest.contract import Entity, ParsedBatch
from patron.ingest.service import import_batch
from patron.members.vault_store import find_by_email, read_personal
from patron.runtime import Runtime

ENTITIES: tuple[Entity, ...] = ("members", "products", "orders", "order_lines", "events", "inventory")
END = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def shop() -> ParsedBatch:
    return generate_shop(4_000, 11)


@pytest.fixture(scope="module")
def tracked_shop() -> ParsedBatch:
    """A small shop whose clickstream covers the whole period."""
    return generate_shop(600, 5, event_window_days=None)


def frame(batch: ParsedBatch, entity: Entity) -> pl.DataFrame:
    result = batch.frame(entity)
    assert result is not None
    return result


def promo_window(column: str) -> pl.Expr:
    day, month = pl.col(column).dt.day(), pl.col(column).dt.month()
    return ((month == 6) & (day <= 18)) | ((month == 11) & (day <= 11))


# -- shape -----------------------------------------------------------------------


def test_frames_have_the_columns_and_keys_the_persistence_service_expects(shop: ParsedBatch) -> None:
    assert (shop.source, shop.primary, shop.quarantine.height) == ("demo", "order_lines", 0)
    assert shop.rows_read == frame(shop, "order_lines").height
    assert frame(shop, "members").columns == [
        "source_id", "name", "email", "phone", "address", "birthday",
        "gender", "birth_year", "region", "city", "channel", "signup_at",
    ]  # fmt: skip
    assert frame(shop, "orders").columns == [
        "order_key", "member_source_id", "ordered_at", "status", "channel", "amount", "discount",
    ]  # fmt: skip
    assert frame(shop, "order_lines").schema == pl.Schema(
        {
            "order_key": pl.String, "line_no": pl.Int32, "product_key": pl.String, "quantity": pl.Int64,
            "unit_price": pl.Float64, "amount": pl.Float64, "discount": pl.Float64, "returned": pl.Boolean,
        }
    )  # fmt: skip
    assert frame(shop, "events").columns == [
        "event_key", "member_source_id", "session_id", "product_key",
        "category", "event_type", "occurred_at", "channel",
    ]  # fmt: skip
    assert frame(shop, "products").columns == ["product_key", "title", "category", "brand", "price"]
    members = frame(shop, "members")
    assert members["source_id"].to_list() == [str(i) for i in range(1, 4_001)]
    keys: tuple[tuple[Entity, str, str], ...] = (
        ("orders", "order_key", r"^demo:O\d{8}$"),
        ("products", "product_key", r"^demo:P\d{4}$"),
        ("events", "event_key", r"^demo:E\d{10}$"),
        ("events", "session_id", r"^demo:S\d{9}$"),
    )
    for entity, key, pattern in keys:
        values = frame(shop, entity)[key]
        assert values.str.contains(pattern).all(), key
        if key != "session_id":
            assert values.n_unique() == values.len(), key
    lines = frame(shop, "order_lines")
    assert lines.select("order_key", "line_no").is_duplicated().sum() == 0
    assert lines.select("order_key", "product_key").is_duplicated().sum() == 0
    known_members = set(members["source_id"])
    assert set(frame(shop, "orders")["member_source_id"]) <= known_members
    assert set(frame(shop, "events")["member_source_id"]) <= known_members
    assert set(lines["product_key"]) <= set(frame(shop, "products")["product_key"])


def test_amounts_add_up(shop: ParsedBatch) -> None:
    lines = frame(shop, "order_lines")
    gross = lines["unit_price"] * lines["quantity"]
    assert ((gross - lines["discount"] - lines["amount"]).abs() < 0.005).all()
    assert (lines["amount"] >= 0).all() and (lines["discount"] >= 0).all()
    totals = lines.group_by("order_key").agg(pl.col("amount").sum().alias("sum"), pl.col("discount").sum().alias("off"))
    orders = frame(shop, "orders").join(totals, on="order_key")
    assert orders.height == frame(shop, "orders").height
    assert ((orders["amount"] - orders["sum"]).abs() < 0.01).all()
    assert ((orders["discount"] - orders["off"]).abs() < 0.01).all()
    quantity = lines["quantity"]
    assert (quantity >= 1).all() and (quantity == 1).mean() > 0.8  # type: ignore[operator]
    lines_per_order = lines.group_by("order_key").len()["len"]
    assert 2.5 < lines_per_order.mean() < 4.0  # type: ignore[operator]
    assert lines_per_order.max() <= 7  # type: ignore[operator]


def test_members_look_like_a_chinese_shop(shop: ParsedBatch) -> None:
    members = frame(shop, "members")
    assert members["phone"].str.contains(r"^1[3-9]\d{9}$").all()
    assert members["phone"].n_unique() == members.height
    assert members["email"].n_unique() == members.height
    assert members["email"].str.contains(r"^[a-z]+\.[a-z]+\d+@example\.(com|net|org)$").all()
    cjk = members["name"].str.contains(r"^[\u4e00-\u9fff]{2,4}$")
    latin = members["name"].str.contains(r"^[A-Z][a-z]+ [A-Z][a-z]+$")
    assert (cjk | latin).all()
    assert 0.8 < cjk.mean() < 0.97  # type: ignore[operator]
    assert members["address"].str.contains(r"^[\u4e00-\u9fff]+(省|市|自治区)[\u4e00-\u9fff]*\d+号(\d+栋)?\d+室$").all()
    birthdays = members["birthday"].str.to_date("%Y-%m-%d")
    assert (birthdays.dt.year() == members["birth_year"]).all()
    assert members["birth_year"].is_between(1949, 2008).all()
    assert set(members["gender"].drop_nulls()) == {"female", "male"}
    assert set(members["channel"]) == {"app", "mini-program", "web", "store"}
    regions = members["region"].value_counts(sort=True)
    assert regions["region"][0] == "广东"
    assert regions["count"][0] > 5 * regions.filter(pl.col("region") == "青海")["count"].sum()
    signup = members["signup_at"]
    assert signup.min() >= datetime(2024, 1, 1) and signup.max() < END  # type: ignore[operator]
    signup_quarters = signup.dt.year() * 4 + (signup.dt.month() - 1) // 3
    assert signup_quarters.n_unique() == 8


def test_products_by_category_brand_and_price(shop: ParsedBatch) -> None:
    products = frame(shop, "products")
    assert products.height == catalog_size(4_000) == 200
    assert catalog_size(1_000_000) == 2_000
    assert set(products["category"]) == {"apparel", "beauty", "electronics", "home", "food", "baby", "sports", "books"}
    assert products["title"].n_unique() == products.height
    assert (products["title"].str.split(" ").list.first() == products["brand"]).all()
    median = products.group_by("category").agg(pl.col("price").median()).sort("price")
    assert median["category"][-1] == "electronics"
    assert median["category"][0] in {"food", "books"}


# -- determinism and scale ---------------------------------------------------------


def test_same_seed_same_shop_other_seed_other_shop() -> None:
    first, again, other = generate_shop(300, 42), generate_shop(300, 42), generate_shop(300, 43)
    for entity in ENTITIES:
        assert frame(first, entity).equals(frame(again, entity)), entity
    assert first.notes == again.notes
    assert not frame(first, "orders").equals(frame(other, "orders"))
    assert not frame(first, "members").equals(frame(other, "members"))


def test_row_counts_scale_with_members() -> None:
    small, large = generate_shop(1_500, 3), generate_shop(6_000, 3)
    assert frame(large, "members").height == 4 * frame(small, "members").height
    for entity in ("orders", "order_lines", "events"):
        ratio = frame(large, entity).height / frame(small, entity).height
        assert 3.0 < ratio < 5.0, (entity, ratio)  # heavy buyers make counts noisy
    lines = frame(large, "order_lines").height
    assert 12 < lines / 6_000 < 24  # about 17 lines per member over two years
    assert 0.8 < frame(large, "events").height / lines < 2.0


# -- purchase process --------------------------------------------------------------


def test_orders_peak_on_618_and_double_11(shop: ParsedBatch) -> None:
    daily = frame(shop, "orders").group_by(pl.col("ordered_at").dt.date().alias("day")).len()
    median = float(daily["len"].median())  # type: ignore[arg-type]
    by_day = dict(zip(daily["day"].to_list(), daily["len"].to_list(), strict=True))
    for year in (2024, 2025):
        assert by_day[date(year, 6, 18)] > 2.0 * median
        assert by_day[date(year, 11, 11)] > 3.0 * median
    window = daily.filter(promo_window("day"))["len"].mean()
    assert window > 1.4 * median  # type: ignore[operator]
    weekday = (
        frame(shop, "orders").filter(~promo_window("ordered_at")).group_by(pl.col("ordered_at").dt.weekday()).len()
    )
    counts = dict(zip(weekday["ordered_at"].to_list(), weekday["len"].to_list(), strict=True))
    assert counts[6] > counts[2]  # Saturdays beat Tuesdays
    hours = frame(shop, "orders")["ordered_at"].dt.hour().value_counts()
    by_hour = dict(zip(hours["ordered_at"].to_list(), hours["count"].to_list(), strict=True))
    assert by_hour[21] > 4 * by_hour[4]


def test_repeat_purchasing_is_heterogeneous(shop: ParsedBatch) -> None:
    completed = frame(shop, "orders").filter(pl.col("status") == "completed")
    frequency = completed.group_by("member_source_id").len()["len"].cast(pl.Float64)
    assert frequency.var() > 5 * frequency.mean()  # type: ignore[operator]
    assert (frequency == 1).mean() > 0.2  # type: ignore[operator]
    assert (frequency >= 20).sum() > 0.02 * frequency.len()
    buyers = frequency.len() / frame(shop, "members").height
    assert 0.85 < buyers < 0.95  # a tenth of the members never buy


def _log_rising(base: float, count: NDArray[np.int64]) -> NDArray[np.float64]:
    """log(base (base+1) ... (base+count-1)) for each count."""
    table = np.concatenate(([0.0], np.cumsum(np.log(base + np.arange(int(count.max()) + 1)))))
    result: NDArray[np.float64] = table[count]
    return result


def _bgnbd_negative_log_likelihood(
    params: NDArray[np.float64], x: NDArray[np.int64], t_x: NDArray[np.float64], t: NDArray[np.float64]
) -> float:
    r, alpha, a, b = np.exp(params)
    common = _log_rising(r, x) + r * math.log(alpha) - _log_rising(a + b, x)
    alive = common - (r + x) * np.log(alpha + t) + _log_rising(b, x)
    gone = common - (r + x) * np.log(alpha + t_x) + math.log(a) + _log_rising(b, np.maximum(x - 1, 0))
    return float(-np.where(x > 0, np.logaddexp(alive, gone), alive).sum())


def _nelder_mead(f: Callable[[NDArray[np.float64]], float], start: NDArray[np.float64]) -> NDArray[np.float64]:
    points: list[NDArray[np.float64]] = [start] + [start + 0.5 * np.eye(start.size)[i] for i in range(start.size)]
    values = [f(p) for p in points]
    for _ in range(3_000):
        order = np.argsort(values)
        points, values = [points[i] for i in order], [values[i] for i in order]
        if values[-1] - values[0] < 1e-9:
            break
        centre = np.mean(points[:-1], axis=0)
        reflected = centre + (centre - points[-1])
        f_reflected = f(reflected)
        if f_reflected < values[0]:
            expanded = centre + 2 * (centre - points[-1])
            f_expanded = f(expanded)
            points[-1], values[-1] = (expanded, f_expanded) if f_expanded < f_reflected else (reflected, f_reflected)
        elif f_reflected < values[-2]:
            points[-1], values[-1] = reflected, f_reflected
        else:
            contracted = centre + 0.5 * (points[-1] - centre)
            f_contracted = f(contracted)
            if f_contracted < values[-1]:
                points[-1], values[-1] = contracted, f_contracted
            else:
                points = [points[0] + 0.5 * (p - points[0]) for p in points]
                values = [f(p) for p in points]
    best: NDArray[np.float64] = points[int(np.argmin(values))]
    return best


def test_bgnbd_fit_recovers_the_true_parameters() -> None:
    batch = generate_shop(12_000, 21, event_window_days=1)
    summary = (
        frame(batch, "orders")
        .filter(pl.col("status") == "completed")
        .group_by("member_source_id")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("ordered_at").min().alias("first"), pl.col("ordered_at").max())
    )
    x = (summary["n"] - 1).to_numpy()
    t_x = ((summary["ordered_at"] - summary["first"]).dt.total_seconds() / 86_400).to_numpy()
    t = ((END - summary["first"]).dt.total_seconds() / 86_400).to_numpy()

    fitted = np.exp(_nelder_mead(lambda p: _bgnbd_negative_log_likelihood(p, x, t_x, t), np.log([1.0, 5.0, 1.0, 2.0])))

    r, alpha, a, b = fitted
    assert r == pytest.approx(BGNBD_R, rel=0.15)
    assert alpha == pytest.approx(BGNBD_ALPHA, rel=0.2)
    assert r / alpha == pytest.approx(BGNBD_R / BGNBD_ALPHA, rel=0.1)
    assert a == pytest.approx(BGNBD_A, rel=0.3)
    assert b == pytest.approx(BGNBD_B, rel=0.35)
    assert batch.notes["bgnbd"] == {"r": BGNBD_R, "alpha": BGNBD_ALPHA, "a": BGNBD_A, "b": BGNBD_B, "time_unit": "day"}


def test_members_buy_mostly_in_their_favourite_categories(shop: ParsedBatch) -> None:
    lines = (
        frame(shop, "order_lines")
        .join(frame(shop, "orders").select("order_key", "member_source_id", "ordered_at"), on="order_key")
        .join(frame(shop, "products").select("product_key", "category"), on="product_key")
        .sort("member_source_id", "ordered_at", "line_no")
    )
    overall = lines["category"].value_counts(normalize=True).rename({"proportion": "overall"})
    ranked = lines.with_columns(
        pl.int_range(pl.len()).over("member_source_id").alias("i"), pl.len().over("member_source_id").alias("n")
    ).filter(pl.col("n") >= 12)
    early = ranked.filter(pl.col("i") < pl.col("n") // 2)
    late = ranked.filter(pl.col("i") >= pl.col("n") // 2)
    favourite = (
        early.group_by("member_source_id", "category")
        .len()
        .sort("len", "category", descending=[True, False])
        .group_by("member_source_id", maintain_order=True)
        .first()
        .select("member_source_id", pl.col("category").alias("favourite"))
    )
    held_out = (
        late.join(favourite, on="member_source_id")
        .join(overall, left_on="favourite", right_on="category")
        .group_by("member_source_id")
        .agg((pl.col("category") == pl.col("favourite")).mean().alias("share"), pl.col("overall").first())
    )
    assert held_out.height > 500
    # Later purchases fall in the category a member favoured earlier far more often
    # than that category's overall share (which is what a taste-free shop would give).
    assert held_out["share"].mean() > 2.0 * held_out["overall"].mean()  # type: ignore[operator]
    assert held_out["share"].mean() > 0.4  # type: ignore[operator]


def test_product_popularity_is_skewed_within_categories(shop: ParsedBatch) -> None:
    sold = (
        frame(shop, "order_lines")
        .join(frame(shop, "products").select("product_key", "category"), on="product_key")
        .group_by("category", "product_key")
        .len()
        .with_columns((pl.col("len") / pl.col("len").sum().over("category")).alias("share"))
    )
    top = sold.group_by("category").agg(pl.col("share").max(), pl.len().alias("products"))
    assert (top["share"] > 3 / top["products"]).all()  # the best-seller sells 3x a uniform share


def test_promotions_discount_the_festival_windows(shop: ParsedBatch) -> None:
    orders = frame(shop, "orders").with_columns(
        promo_window("ordered_at").alias("promo"),
        (pl.col("amount") + pl.col("discount")).alias("gross"),
    )
    stats = orders.group_by("promo").agg(
        (pl.col("discount") > 0).mean().alias("discounted"),
        (pl.col("discount").sum() / pl.col("gross").sum()).alias("rate"),
    )
    inside = stats.filter(pl.col("promo")).row(0, named=True)
    outside = stats.filter(~pl.col("promo")).row(0, named=True)
    assert inside["discounted"] > 0.7 and inside["rate"] > 0.08
    assert outside["discounted"] < 0.1 and outside["rate"] < 0.01
    # 满减: every festival order worth 250 or more before discounts saves at least 20.
    big = orders.filter(pl.col("promo") & (pl.col("gross") >= 250))
    assert big.height > 100 and (big["discount"] >= 20).all()
    # The saving is spread over the lines: most lines of such orders carry a discount.
    lines = frame(shop, "order_lines").join(big.select("order_key"), on="order_key")
    assert (lines["discount"] > 0).mean() > 0.9  # type: ignore[operator]


def test_returns_and_cancellations_stay_in_range(shop: ParsedBatch) -> None:
    orders = frame(shop, "orders")
    assert set(orders["status"]) == {"completed", "cancelled"}
    cancel_rate = (orders["status"] == "cancelled").mean()
    assert 0.02 < cancel_rate < 0.08  # type: ignore[operator]
    lines = frame(shop, "order_lines").join(orders.select("order_key", "status"), on="order_key")
    completed = lines.filter(pl.col("status") == "completed")
    assert 0.02 < completed["returned"].mean() < 0.07  # type: ignore[operator]
    assert not lines.filter(pl.col("status") == "cancelled")["returned"].any()


# -- clickstream -------------------------------------------------------------------


def test_every_purchase_follows_a_view_and_a_cart_in_its_session(tracked_shop: ParsedBatch) -> None:
    events = frame(tracked_shop, "events")
    assert set(events["event_type"]) == {"view", "fav", "cart", "purchase"}
    first_of = events.group_by("session_id", "product_key", "event_type").agg(pl.col("occurred_at").min())
    pivot = first_of.pivot("event_type", index=["session_id", "product_key"], values="occurred_at")
    bought = pivot.filter(pl.col("purchase").is_not_null())
    assert bought.height == events.filter(pl.col("event_type") == "purchase").height
    assert (bought["view"] < bought["cart"]).all()
    assert (bought["cart"] < bought["purchase"]).all()
    # Events of a session are contiguous and in time order, by one member on one channel.
    sessions = events.group_by("session_id", maintain_order=True).agg(
        pl.col("occurred_at").is_sorted().alias("sorted"),
        pl.col("member_source_id").n_unique().alias("members"),
        pl.col("channel").n_unique().alias("channels"),
    )
    assert sessions["sorted"].all()
    assert (sessions["members"] == 1).all() and (sessions["channels"] == 1).all()
    assert events["session_id"].rle_id().max() + 1 == sessions.height  # type: ignore[operator]
    categories = events.join(frame(tracked_shop, "products"), on="product_key")
    assert (categories["category"] == categories["category_right"]).all()


def test_every_order_has_its_session(tracked_shop: ParsedBatch) -> None:
    purchases = (
        frame(tracked_shop, "events")
        .filter(pl.col("event_type") == "purchase")
        .group_by("session_id")
        .agg(
            pl.col("member_source_id").first(),
            pl.col("occurred_at").first().alias("ordered_at"),
            pl.col("channel").first(),
            pl.col("product_key").sort().alias("products"),
        )
    )
    orders = (
        frame(tracked_shop, "order_lines")
        .group_by("order_key")
        .agg(pl.col("product_key").sort().alias("products"))
        .join(frame(tracked_shop, "orders"), on="order_key")
    )
    matched = orders.join(purchases, on=["member_source_id", "ordered_at", "channel", "products"], how="left")
    assert matched.height == orders.height == purchases.height
    assert matched["session_id"].null_count() == 0
    assert matched["session_id"].n_unique() == orders.height


def test_funnel_conversion_is_realistic(tracked_shop: ParsedBatch) -> None:
    pairs = (
        frame(tracked_shop, "events")
        .group_by("session_id", "product_key")
        .agg(*[(pl.col("event_type") == kind).any().alias(kind) for kind in ("view", "cart", "purchase")])
    )
    viewed, carted, bought = (int(pairs[kind].sum()) for kind in ("view", "cart", "purchase"))
    assert viewed == pairs.height  # nothing is carted or bought unseen
    assert 0.2 < carted / viewed < 0.35
    assert 0.3 < bought / carted < 0.6
    sessions = frame(tracked_shop, "events")["session_id"].n_unique()
    assert sessions > 3 * frame(tracked_shop, "orders").height  # most sessions end without an order


def test_default_clickstream_covers_the_last_two_months(shop: ParsedBatch) -> None:
    events = frame(shop, "events")
    assert events["occurred_at"].min() >= datetime(2025, 10, 31)  # type: ignore[operator]
    assert events["occurred_at"].max() < END  # type: ignore[operator]
    assert shop.notes["events_from"] == "2025-11-01"
    recent = frame(shop, "orders").filter(pl.col("ordered_at") >= datetime(2025, 11, 1))
    purchase_sessions = events.filter(pl.col("event_type") == "purchase")["session_id"].n_unique()
    assert purchase_sessions == recent.height


def test_rejects_empty_shops_and_inverted_periods() -> None:
    from patron.errors import ValidationError

    with pytest.raises(ValidationError):
        generate_shop(0, 1)
    with pytest.raises(ValidationError):
        generate_shop(10, 1, start=date(2025, 1, 2), end=date(2025, 1, 1))


# -- inventory ---------------------------------------------------------------------


def test_inventory_counts_every_product_and_some_run_low(shop: ParsedBatch) -> None:
    stock = frame(shop, "inventory")  # type: ignore[arg-type]
    products = frame(shop, "products")
    assert stock.schema == pl.Schema(
        {
            "product_key": pl.String, "updated_at": pl.Datetime("us"), "on_hand": pl.Int64,
            "lead_time_days": pl.Int32, "safety_stock": pl.Int64,
        }
    )  # fmt: skip
    assert stock["product_key"].to_list() == products["product_key"].to_list()
    assert (stock["updated_at"] == datetime(2025, 12, 31, 23, 0)).all()
    assert set(stock["lead_time_days"]) <= {3, 5, 7, 10, 14, 21, 30}
    assert (stock["on_hand"] >= 0).all() and (stock["safety_stock"] >= 0).all()
    # recent sales, counted here from the orders: units of completed orders in the last 28 days, per day
    recent = frame(shop, "orders").filter(
        (pl.col("status") == "completed") & (pl.col("ordered_at") >= datetime(2025, 12, 4))
    )
    sold = frame(shop, "order_lines").join(recent.select("order_key"), on="order_key")
    rate = sold.group_by("product_key").agg((pl.col("quantity").sum() / 28).alias("rate"))
    stock = stock.join(rate, on="product_key", how="left").with_columns(pl.col("rate").fill_null(0.0))
    selling = stock.filter(pl.col("rate") > 0)
    cover = pl.col("rate") * pl.col("lead_time_days") + pl.col("safety_stock")
    low = selling.filter(pl.col("on_hand") < cover)
    assert 0.03 < low.height / selling.height < 0.15
    comfortable = selling.filter(pl.col("on_hand") >= cover)
    assert (comfortable["on_hand"] >= comfortable["rate"] * (comfortable["lead_time_days"] + 30)).all()
    days_of_safety = selling["safety_stock"] / selling["rate"]
    assert (days_of_safety >= 3 - 1e-9).all() and (days_of_safety < 7 + 1 / selling["rate"]).all()
    assert (stock.filter(pl.col("rate") == 0)["safety_stock"] == 0).all()


# -- persistence -------------------------------------------------------------------


@pytest.mark.slow
def test_a_demo_shop_persists_through_the_import_service(runtime: Runtime) -> None:
    batch = generate_shop(500, 7)

    run = import_batch(runtime, "demo", "demo", lambda: generate_shop(500, 7))

    assert run.status == "completed"
    assert run.rows_read == run.rows_imported == frame(batch, "order_lines").height
    with runtime.warehouse(read_only=True) as warehouse:
        counts = warehouse.counts()
        stored = warehouse.table("members").to_polars()
    assert counts == {entity: frame(batch, entity).height for entity in ENTITIES}
    assert not {"name", "email", "phone", "address", "birthday"} & set(stored.columns)
    member = frame(batch, "members").row(41, named=True)
    keys = find_by_email(runtime.store, runtime.cipher, member["email"])
    assert len(keys) == 1
    personal = read_personal(runtime.store, runtime.cipher, keys[0])
    assert personal is not None
    assert {field: personal[field] for field in ("name", "phone", "address", "birthday")} == {
        field: member[field] for field in ("name", "phone", "address", "birthday")
    }
