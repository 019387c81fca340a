"""The Taobao importer: behaviour events in Shanghai time, no orders, real-file counts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from patron.errors import ImportFormatError
from patron.ingest.service import run_import
from patron.ingest.taobao import TaobaoImporter
from patron.runtime import Runtime
from tests.conftest import shared_data

SAMPLE = """1,2268318,2520377,pv,1511544070
1,2268318,2520377,fav,1511544100
1,2268318,2520377,CART,1511544200
1,2268318,2520377,buy,1511544300
7,2268318,999,pv,1511500000
7,0042,2520377,pv,1511500001
"""


def _parse(tmp_path: Path, content: str = SAMPLE) -> TaobaoImporter:
    path = tmp_path / "taobao.csv"
    path.write_text(content)
    return TaobaoImporter(path)


def test_behaviors_map_to_event_types_in_shanghai_time(tmp_path: Path) -> None:
    batch = _parse(tmp_path).parse()

    assert batch.primary == "events" and batch.events is not None
    events = batch.events
    assert events["event_type"].to_list() == ["view", "fav", "cart", "purchase", "view", "view"]
    # 1511544070 is 2017-11-24 17:21:10 UTC, 2017-11-25 01:21:10 in Shanghai (UTC+8)
    assert events["occurred_at"][0] == datetime(2017, 11, 25, 1, 21, 10)
    assert events["product_key"].to_list()[-1] == "taobao:42"
    assert events["event_key"][3] == "taobao:1:2268318:buy:1511544300:1"
    assert batch.notes["events_by_type"] == {"view": 3, "fav": 1, "cart": 1, "purchase": 1}


def test_members_and_products_come_from_the_events(tmp_path: Path) -> None:
    batch = _parse(tmp_path).parse()

    assert batch.members is not None and batch.products is not None
    assert batch.members.sort("source_id").rows() == [
        ("1", datetime(2017, 11, 25, 1, 21, 10)),
        ("7", datetime(2017, 11, 24, 13, 6, 40)),
    ]
    categories = dict(batch.products.iter_rows())
    assert categories == {"taobao:2268318": "2520377", "taobao:42": "2520377"}  # the most frequent category


def test_buy_events_do_not_create_orders(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "taobao.csv"
    path.write_text(SAMPLE)

    run = run_import(runtime, "taobao", path)

    assert run.rows_imported == 6
    assert "orders" not in run.entities
    with runtime.warehouse() as warehouse:
        counts = warehouse.counts()
    assert counts["orders"] == 0 and counts["order_lines"] == 0
    assert counts["events"] == 6 and counts["members"] == 2 and counts["products"] == 2


def test_a_file_with_too_few_columns_names_the_missing_ones(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="category_id, behavior, timestamp"):
        _parse(tmp_path, "1,2\n3,4\n").parse()


@pytest.mark.slow
def test_real_taobao_prefix_reconciles_and_is_idempotent(runtime: Runtime) -> None:
    path = shared_data("taobao_userbehavior/UserBehavior_first_users_prefix.csv.gz")

    first = run_import(runtime, "taobao", path)

    assert first.status == "completed"
    assert first.rows_read == 84_287
    assert first.rows_imported == 84_287
    assert first.rows_quarantined == 0 and first.rows_duplicate == 0
    assert first.entities["members"] == 814
    with runtime.warehouse() as warehouse:
        counts = warehouse.counts()
        events = warehouse.table("events").to_polars()
    assert counts["events"] == 84_287 and counts["members"] == 814
    assert counts["orders"] == 0
    assert events["occurred_at"].max() == datetime(2017, 12, 3, 23, 59, 23)  # local time, last day of the window
    assert events["event_type"].value_counts().sort("event_type").rows() == [
        ("cart", 4_494),
        ("fav", 2_351),
        ("purchase", 1_749),
        ("view", 75_693),
    ]

    again = run_import(runtime, "taobao", path)

    assert again.rows_imported == 0 and again.rows_duplicate == 84_287
    with runtime.warehouse() as warehouse:
        assert warehouse.counts() == counts
