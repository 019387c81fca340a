"""Member clusters: features against a plain-Python computation, planted clusters recovered, stable ids."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from numpy.typing import NDArray
from sklearn.cluster import KMeans  # type: ignore[import-untyped]
from sklearn.metrics import adjusted_rand_score, silhouette_score  # type: ignore[import-untyped]

from patron.analytics.clusters import FEATURES, ClusterResult, cluster_features, cluster_members, describe, silhouettes
from patron.demo import generate_shop
from patron.errors import ValidationError
from patron.members.models import MemberIdentity
from patron.runtime import Runtime
from patron.warehouse.schema import TABLES

AS_OF = datetime(2024, 3, 1)
Row = dict[str, Any]

# -- features ------------------------------------------------------------------------------------------------------

ORDERS = [  # order, member, ordered_at, status, discount
    ("a1", "a", datetime(2023, 3, 1, 12), "completed", 0.0),
    ("a2", "a", datetime(2024, 2, 20, 18), "completed", 4.0),
    ("a3", "a", datetime(2024, 2, 25), "cancelled", 0.0),
    ("a4", "a", datetime(2024, 3, 1), "completed", 0.0),  # at as-of: not before it
    ("b1", "b", datetime(2024, 2, 29, 23, 59), "completed", 0.0),
    ("g1", None, datetime(2024, 1, 1), "completed", 0.0),
]
LINES = [  # order, product, amount, returned
    ("a1", "P1", 30.0, False), ("a1", "P2", 20.0, True), ("a1", "P3", 5.0, False),
    ("a2", "P1", 16.0, False), ("a2", "P4", 9.0, False), ("a2", "P9", 7.0, False),
    ("a3", "P2", 100.0, False), ("a4", "P2", 100.0, False), ("g1", "P1", 10.0, False),
]  # fmt: skip
PRODUCTS = [("P1", "books"), ("P2", "toys"), ("P3", "games"), ("P4", None)]


def hand_made() -> tuple[list[Row], list[Row], list[Row]]:
    orders = [
        dict(zip(["order_key", "member_key", "ordered_at", "status", "discount"], r, strict=True)) for r in ORDERS
    ]
    names = ["order_key", "product_key", "amount", "returned"]
    lines = [
        {"line_no": n, "quantity": 1, "unit_price": r[2], **dict(zip(names, r, strict=True))}
        for n, r in enumerate(LINES, start=1)
    ]
    products = [dict(zip(["product_key", "category"], r, strict=True)) for r in PRODUCTS]
    return orders, lines, products


def demo(members: int, seed: int) -> tuple[list[Row], list[Row], list[Row]]:
    shop = generate_shop(members, seed)
    frames = {name: shop.frame(name) for name in ("orders", "order_lines", "products")}
    orders = frames["orders"].rename({"member_source_id": "member_key"})  # type: ignore[union-attr]
    return orders.to_dicts(), frames["order_lines"].to_dicts(), frames["products"].to_dicts()  # type: ignore[union-attr]


def load(con: ibis.BaseBackend, prefix: str, data: tuple[list[Row], ...]) -> list[Any]:
    """The rows as warehouse tables named ``<prefix>orders`` ... on ``con`` (absent columns null or zero)."""
    tables = []
    defaults = {"source": "test", "amount": 0.0, "discount": 0.0}
    for name, rows in zip(("orders", "order_lines", "products"), data, strict=True):
        schema = TABLES[name].to_pyarrow()
        filled = [{**defaults, **row} for row in rows]
        arrow = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in filled], schema=schema)
        tables.append(con.create_table(f"{prefix}{name}", arrow, overwrite=True))
    return tables


def reference_features(orders: list[Row], lines: list[Row], products: list[Row], as_of: datetime) -> dict[str, Row]:
    done = [o for o in orders if o["status"] == "completed" and o["member_key"] and o["ordered_at"] < as_of]
    member_of = {o["order_key"]: o["member_key"] for o in done}
    category = {p["product_key"]: p["category"] for p in products}
    orders_of: dict[str, list[Row]] = defaultdict(list)
    for order in done:
        orders_of[order["member_key"]].append(order)
    lines_of: dict[str, list[Row]] = defaultdict(list)
    for line in lines:
        if line["order_key"] in member_of:
            lines_of[member_of[line["order_key"]]].append(line)
    result = {}
    for member, mine in orders_of.items():
        bought = lines_of[member]
        kept = [line for line in bought if not line["returned"]]
        monetary = sum(line["amount"] for line in kept)
        result[member] = {
            "recency_days": math.floor((as_of - max(o["ordered_at"] for o in mine)).total_seconds() / 86400),
            "frequency": len(mine),
            "monetary": monetary,
            "avg_order_value": monetary / len(mine),
            "category_breadth": len({category.get(line["product_key"]) for line in kept} - {None}),
            "discount_share": sum(o["discount"] > 0 for o in mine) / len(mine),
            "return_share": sum(line["returned"] for line in bought) / len(bought) if bought else 0.0,
            "tenure_days": math.floor((as_of - min(o["ordered_at"] for o in mine)).total_seconds() / 86400),
        }
    return result


def features_of(tables: list[Any], as_of: datetime) -> dict[str, Row]:
    rows = cluster_features(*tables, as_of).to_pyarrow().to_pylist()
    return {row.pop("member_key"): row for row in rows}


def assert_same_features(ours: dict[str, Row], theirs: dict[str, Row]) -> None:
    assert ours.keys() == theirs.keys()
    for member, expected in theirs.items():
        assert ours[member] == pytest.approx(expected, rel=1e-12), member


def test_features_of_a_hand_made_shop(duck: ibis.BaseBackend) -> None:
    ours = features_of(load(duck, "", hand_made()), AS_OF)

    assert ours == {
        # a: two completed orders before as-of, 30 + 5 + 16 + 9 + 7 kept; books, games (P4 has no category,
        # P9 is not in the catalogue); 1 returned line of 6; first order 365.5 days before as-of (2024 is leap)
        "a": {"recency_days": 9, "frequency": 2, "monetary": 67.0, "avg_order_value": 33.5, "category_breadth": 2,
              "discount_share": 0.5, "return_share": 1 / 6, "tenure_days": 365},
        "b": {"recency_days": 0, "frequency": 1, "monetary": 0.0, "avg_order_value": 0.0, "category_breadth": 0,
              "discount_share": 0.0, "return_share": 0.0, "tenure_days": 0},
    }  # fmt: skip
    assert_same_features(ours, reference_features(*hand_made(), AS_OF))


@pytest.fixture(scope="module")
def shop() -> tuple[list[Row], list[Row], list[Row]]:
    return demo(300, 23)


def test_features_of_a_demo_shop_equal_a_plain_python_computation(duck: ibis.BaseBackend, shop: Any) -> None:
    as_of = datetime(2025, 9, 1)

    ours = features_of(load(duck, "", shop), as_of)

    assert len(ours) > 150
    assert_same_features(ours, reference_features(*shop, as_of))


@pytest.fixture
def engines(duck: ibis.BaseBackend, postgres: ibis.BaseBackend) -> Iterator[tuple[ibis.BaseBackend, ...]]:
    yield duck, postgres
    for name in ("orders", "order_lines", "products"):
        postgres.drop_table(f"cf_{name}", force=True)


@pytest.mark.postgres
def test_features_equal_on_duckdb_and_postgres(engines: tuple[ibis.BaseBackend, ...], shop: Any) -> None:
    duck, postgres = engines
    as_of = datetime(2025, 9, 1)

    on_postgres = features_of(load(postgres, "cf_", shop), as_of)

    assert_same_features(on_postgres, features_of(load(duck, "cf_", shop), as_of))


def test_features_name_missing_columns(duck: ibis.BaseBackend) -> None:
    orders, lines, products = load(duck, "", hand_made())

    with pytest.raises(ValidationError, match="returned") as raised:
        cluster_features(orders, lines.drop("returned"), products, AS_OF)

    assert raised.value.field == "lines"


# -- planted clusters ------------------------------------------------------------------------------------------------

# Group -> (typical raw features, the trait that sets it apart).
PLANTED: dict[str, tuple[dict[str, float], str]] = {
    "loyal": ({"recency_days": 20, "frequency": 12, "monetary": 3000, "avg_order_value": 250, "category_breadth": 5,
               "discount_share": 0.1, "return_share": 0.02, "tenure_days": 600}, "frequency:high"),
    "lapsed": ({"recency_days": 300, "frequency": 1, "monetary": 80, "avg_order_value": 80, "category_breadth": 1,
                "discount_share": 0.0, "return_share": 0.0, "tenure_days": 320}, "recency_days:high"),
    "deals": ({"recency_days": 60, "frequency": 3, "monetary": 400, "avg_order_value": 130, "category_breadth": 2,
               "discount_share": 0.8, "return_share": 0.05, "tenure_days": 400}, "discount_share:high"),
    "new": ({"recency_days": 10, "frequency": 2, "monetary": 200, "avg_order_value": 100, "category_breadth": 2,
             "discount_share": 0.1, "return_share": 0.01, "tenure_days": 20}, "tenure_days:low"),
    "returners": ({"recency_days": 90, "frequency": 4, "monetary": 1500, "avg_order_value": 1200,
                   "category_breadth": 1, "discount_share": 0.1, "return_share": 0.6, "tenure_days": 500},
                  "return_share:high"),
}  # fmt: skip
SHARES = (0.35, 0.25, 0.25, 0.15)


def planted(groups: list[str], sizes: list[int], seed: int, prefix: str = "m") -> tuple[pa.Table, dict[str, str]]:
    """Members drawn around each group's typical features (log-normal noise; shares with normal noise)."""
    rng = np.random.default_rng(seed)
    group_of = np.repeat(np.arange(len(groups)), sizes)
    rng.shuffle(group_of)
    n = group_of.size
    columns: dict[str, Any] = {"member_key": [f"{prefix}{i:06d}" for i in range(n)]}
    for name in FEATURES:
        typical = np.array([PLANTED[g][0][name] for g in groups])[group_of]
        if name.endswith("_share"):
            columns[name] = np.clip(typical + rng.normal(0, 0.05, n), 0, 1)
        else:
            columns[name] = typical * np.exp(rng.normal(0, 0.25, n))
    members = dict(zip(columns["member_key"], (groups[g] for g in group_of), strict=True))
    return pa.table(columns), members


def labels_of(result: ClusterResult) -> dict[str, int]:
    return dict(zip(result.labels["member_key"].to_pylist(), result.labels["cluster"].to_pylist(), strict=True))


def id_of_group(result: ClusterResult, members: dict[str, str]) -> dict[str, int]:
    """The id most members of each planted group carry."""
    labels = labels_of(result)
    votes: dict[str, Counter[int]] = defaultdict(Counter)
    for key, group in members.items():
        votes[group][labels[key]] += 1
    return {group: counter.most_common(1)[0][0] for group, counter in votes.items()}


FOUR = ["loyal", "lapsed", "deals", "new"]


@pytest.fixture(scope="module")
def four() -> tuple[pa.Table, dict[str, str], ClusterResult]:
    table, members = planted(FOUR, [700, 500, 500, 300], seed=1)
    return table, members, cluster_members(table)


def test_planted_clusters_are_recovered_and_described(four: Any) -> None:
    _, members, result = four

    labels = labels_of(result)
    keys = sorted(members)
    assert result.k == 4
    assert adjusted_rand_score([members[k] for k in keys], [labels[k] for k in keys]) > 0.98
    ids = id_of_group(result, members)
    assert sorted(ids.values()) == [0, 1, 2, 3]
    assert ids["loyal"] == 0  # fresh ids go by decreasing size
    by_id = {c.id: c for c in result.clusters}
    for group, cluster_id in ids.items():
        trait = PLANTED[group][1]
        assert trait in by_id[cluster_id].traits, (group, by_id[cluster_id].traits)
    assert "Frequent" in by_id[ids["loyal"]].description or "frequent" in by_id[ids["loyal"]].description
    assert by_id[ids["lapsed"]].description.startswith("Lapsed")


def test_profiles_hold_sizes_shares_and_raw_means(four: Any) -> None:
    table, _, result = four

    labels = labels_of(result)
    rows = table.to_pylist()
    for cluster in result.clusters:
        mine = [r for r in rows if labels[r["member_key"]] == cluster.id]
        assert cluster.size == len(mine)
        assert cluster.share == pytest.approx(len(mine) / len(rows))
        for name in FEATURES:
            assert cluster.means[name] == pytest.approx(float(np.mean([r[name] for r in mine])), rel=1e-9)
    assert sum(c.size for c in result.clusters) == table.num_rows


def test_k_is_the_silhouette_argmax_and_the_silhouette_is_rousseeuws(four: Any) -> None:
    _, _, result = four

    summary = result.summary()
    scores = {int(k): s for k, s in summary["silhouette"].items()}
    assert sorted(scores) == list(range(2, 9))
    assert summary["k"] == max(scores, key=lambda k: scores[k])
    assert "silhouette" in summary["criterion"]
    # The one-pass silhouette equals scikit-learn's, including a cluster of one member.
    points = np.random.default_rng(3).normal(size=(600, 8))
    points[:200] += 2.5
    labelings = [KMeans(k, n_init=2, random_state=0).fit(points).labels_.astype(np.int64) for k in (2, 3, 6)]
    labelings.append(np.r_[np.zeros(599, dtype=np.int64), [1]])
    expected = [silhouette_score(points, labels) for labels in labelings]
    assert silhouettes(points, labelings) == pytest.approx(expected, abs=1e-12)


def test_rebuild_on_permuted_rows_gives_the_same_ids(four: Any) -> None:
    table, _, result = four
    previous = json.loads(json.dumps(result.summary()))  # what a build stores and reads back

    again = cluster_members(table.take(np.random.default_rng(5).permutation(table.num_rows)), previous)

    assert again.labels.equals(result.labels)
    assert again.summary()["clusters"] == result.summary()["clusters"]


def test_rebuild_with_a_few_members_added_keeps_every_id(four: Any) -> None:
    table, members, result = four
    extra, extra_members = planted(FOUR, [10, 10, 10, 10], seed=9, prefix="n")

    again = cluster_members(pa.concat_tables([table, extra]), result.summary())

    assert again.k == 4
    assert id_of_group(again, {**members, **extra_members}) == id_of_group(result, members)
    before, after = labels_of(result), labels_of(again)
    assert sum(before[k] == after[k] for k in before) / len(before) > 0.99
    assert again.next_id == 4


def test_a_new_group_gets_a_fresh_id_and_a_lost_group_retires_its_id(four: Any) -> None:
    _, members, result = four
    ids = id_of_group(result, members)
    five, five_members = planted([*FOUR, "returners"], [700, 500, 500, 300, 400], seed=2)

    grown = cluster_members(five, result.summary())

    assert grown.k == 5
    grown_ids = id_of_group(grown, five_members)
    assert {g: grown_ids[g] for g in FOUR} == ids
    assert grown_ids["returners"] == 4 and grown.next_id == 5
    assert "return_share:high" in {c.id: c for c in grown.clusters}[4].traits
    three, three_members = planted(["loyal", "deals", "new"], [700, 500, 300], seed=4)

    shrunk = cluster_members(three, grown.summary())

    assert id_of_group(shrunk, three_members) == {g: ids[g] for g in ("loyal", "deals", "new")}
    assert shrunk.next_id == 5  # the ids of lapsed and returners are not handed out again


def test_same_data_same_result() -> None:
    table, _ = planted(FOUR, [100, 100, 100, 100], seed=7)

    first, second = cluster_members(table), cluster_members(table)

    assert first.labels.equals(second.labels)
    assert json.dumps(first.summary()) == json.dumps(second.summary())


# -- descriptions, degenerate inputs, bad inputs -------------------------------------------------------------------


def test_describe_names_the_most_distinctive_traits() -> None:
    centre = dict.fromkeys(FEATURES, 0.1) | {"frequency": 1.2, "recency_days": -0.8, "monetary": 0.49}

    assert describe(centre) == (("frequency:high", "recency_days:low"), "Frequent, recent buyers")
    assert describe(dict.fromkeys(FEATURES, 0.0)) == ((), "Typical buyers")
    many = dict.fromkeys(FEATURES, -0.6) | {"discount_share": 2.0}
    codes, phrase = describe(many)
    assert codes == ("discount_share:high", "recency_days:low", "frequency:low")
    assert phrase == "Deal-seeking, recent, infrequent buyers"


def empty_features(rows: int = 0, value: float = 1.0) -> pa.Table:
    columns = {"member_key": pa.array([f"k{i}" for i in range(rows)], pa.string())}
    return pa.table(columns | {f: pa.array([value] * rows, pa.float64()) for f in FEATURES})


def test_no_members_and_identical_members_give_a_reason() -> None:
    nobody = cluster_members(empty_features())
    same = cluster_members(empty_features(rows=30))

    assert (nobody.k, nobody.labels.num_rows, nobody.reason) == (0, 0, "no member has bought yet")
    assert (same.k, same.reason) == (1, "fewer than two distinct members")
    assert set(same.labels["cluster"].to_pylist()) == {0}
    assert json.loads(json.dumps(same.summary()))["clusters"][0]["description"] == "Typical buyers"


def bad(table: pa.Table, column: str, row: int, value: Any) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, table[column].type))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda t: t.drop_columns(["tenure_days"]), "features", "tenure_days"),
        (lambda t: bad(t, "monetary", 3, None), "features.monetary", "member k3"),
        (lambda t: bad(t, "frequency", 2, -1.0), "features.frequency", "row 2"),
        (lambda t: bad(t, "member_key", 1, "k0"), "features.member_key", "more than once"),
    ],
)
def test_bad_features_are_refused(change: Any, field: str, message: str) -> None:
    table = empty_features(rows=10)
    with pytest.raises(ValidationError, match=message) as raised:
        cluster_members(change(table))
    assert raised.value.field == field


def test_a_malformed_previous_is_refused(four: Any) -> None:
    table, _, result = four
    previous = result.summary()
    del previous["clusters"][0]["centroid"]

    with pytest.raises(ValidationError) as raised:
        cluster_members(table, previous)

    assert raised.value.field == "previous"


def test_a_demo_shop_clusters_end_to_end(duck: ibis.BaseBackend, shop: Any) -> None:
    features = cluster_features(*load(duck, "", shop), datetime(2025, 9, 1))

    result = cluster_members(features)

    summary = json.loads(json.dumps(result.summary()))
    assert 2 <= summary["k"] <= 8 and summary["reason"] is None
    assert sum(c["size"] for c in summary["clusters"]) == summary["members"] == result.labels.num_rows
    assert sum(c["share"] for c in summary["clusters"]) == pytest.approx(1.0)
    assert all(c["description"] for c in summary["clusters"])
    frequency: NDArray[np.float64] = features.to_pyarrow()["frequency"].to_numpy()
    assert summary["standardization"]["mean"]["frequency"] == pytest.approx(np.log1p(frequency).mean())


@pytest.mark.slow
def test_online_retail_features_reproduce_the_published_rfm_totals(retail: Runtime) -> None:
    with retail.warehouse(read_only=True) as warehouse:
        tables = [warehouse.table(name) for name in ("orders", "order_lines", "products")]
        features = cluster_features(*tables, datetime(2011, 12, 10)).to_pyarrow()
    with retail.store.session() as sess:
        key = sess.query(MemberIdentity.member_key).filter(MemberIdentity.source_id == "12346").scalar()

    # ../shared/data/README.md: 4,339 customers, 18,536 invoices, monetary 8,911,407.90; 12346: 325, 1, 77,183.60
    assert features.num_rows == 4_339
    assert sum(features["frequency"].to_pylist()) == 18_536
    assert sum(features["monetary"].to_pylist()) == pytest.approx(8_911_407.90, abs=0.01)
    row = features.filter(pc.equal(features["member_key"], key)).to_pylist()[0]
    assert (row["recency_days"], row["frequency"], row["category_breadth"]) == (325, 1, 0)  # no categories
    assert row["monetary"] == pytest.approx(77_183.60)
    result = cluster_members(features)
    assert 2 <= result.k <= 8 and sum(c.size for c in result.clusters) == 4_339
