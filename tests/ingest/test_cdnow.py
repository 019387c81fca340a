"""The CDNOW importer: one order per purchase row, numeric member ids, real-file totals."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from patron.ingest.cdnow import CdnowImporter
from patron.ingest.service import run_import
from patron.members.identity import resolve_member_keys
from patron.runtime import Runtime
from tests.conftest import shared_data

SAMPLE = (
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00010 19970301  2   20.00\r\n"
    " 00002 19970112  1   12.00\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00002 19970105  0    0.00\r\n"
    " 00001 19970101  1   11.77\r\n"
)


def _write(tmp_path: Path, content: str = SAMPLE, name: str = "cdnow.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode())
    return path


def test_each_row_is_one_order_with_one_cd_line(tmp_path: Path) -> None:
    batch = CdnowImporter(_write(tmp_path)).parse()

    assert batch.primary == "order_lines" and batch.rows_read == 5
    assert batch.orders is not None and batch.order_lines is not None and batch.products is not None
    assert batch.orders["order_key"].to_list() == [
        "cdnow:10:19970301:1",
        "cdnow:2:19970112:1",
        "cdnow:2:19970112:2",  # second purchase of the same customer that day
        "cdnow:2:19970105:1",
        "cdnow:1:19970101:1",
    ]
    assert batch.orders["amount"].to_list() == [20.0, 12.0, 77.0, 0.0, 11.77]
    assert set(batch.orders["status"]) == {"completed"}
    lines = batch.order_lines
    assert lines["line_no"].to_list() == [1] * 5
    assert set(lines["product_key"]) == {"cdnow:cd"}
    assert lines["quantity"].to_list() == [2, 1, 5, 0, 1]
    assert lines["unit_price"].to_list() == pytest.approx([10.0, 12.0, 15.4, 0.0, 11.77])
    assert batch.products.to_dicts() == [{"product_key": "cdnow:cd", "title": "CD"}]


def test_member_ids_lose_leading_zeros_and_signup_is_the_first_purchase(tmp_path: Path) -> None:
    batch = CdnowImporter(_write(tmp_path)).parse()

    assert batch.members is not None
    members = {row["source_id"]: row["signup_at"] for row in batch.members.iter_rows(named=True)}
    assert members == {
        "10": datetime(1997, 3, 1),
        "2": datetime(1997, 1, 5),  # not the first row of customer 2 in the file
        "1": datetime(1997, 1, 1),
    }


def test_member_order_ranks_ids_numerically(runtime: Runtime, tmp_path: Path) -> None:
    run_import(runtime, "cdnow", _write(tmp_path))

    lookup = resolve_member_keys(runtime.store, "cdnow", pl.Series(["1", "2", "10"]))
    keys = dict(zip(lookup["member_source_id"], lookup["member_key"], strict=True))
    with runtime.warehouse() as warehouse:
        ranks = warehouse.table("member_order").to_polars()
    rank = dict(zip(ranks["member_key"], ranks["source_rank"], strict=True))
    assert [rank[keys[i]] for i in ("1", "2", "10")] == [1, 2, 3]


def test_header_order_and_gzip_do_not_matter(tmp_path: Path) -> None:
    content = " dollar_value customer_id number_of_cds date\r\n 11.77 00001 1 19970101\r\n"
    path = tmp_path / "cdnow.txt.gz"
    path.write_bytes(gzip.compress(content.encode()))

    batch = CdnowImporter(path).parse()

    assert batch.orders is not None
    assert batch.orders.select("order_key", "member_source_id", "amount").row(0) == ("cdnow:1:19970101:1", "1", 11.77)


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path: Path) -> None:
    batch = CdnowImporter(_write(tmp_path, "\ufeff" + SAMPLE)).parse()

    assert batch.rows_read == 5 and batch.quarantine.height == 0


def test_import_writes_orders_lines_members_and_the_product(runtime: Runtime, tmp_path: Path) -> None:
    run = run_import(runtime, "cdnow", _write(tmp_path))

    assert run.entities == {"members": 3, "products": 1, "orders": 5, "order_lines": 5}
    with runtime.warehouse() as warehouse:
        orders = warehouse.table("orders").to_polars()
    assert orders["member_key"].null_count() == 0
    assert set(orders["source"]) == {"cdnow"}


@pytest.mark.slow
def test_real_cdnow_master_file_reconciles_and_is_idempotent(runtime: Runtime) -> None:
    path = shared_data("cdnow/CDNOW_master.txt.gz")

    first = run_import(runtime, "cdnow", path)

    assert first.status == "completed"
    assert first.rows_read == 69_659
    assert first.rows_imported == 69_659
    assert first.rows_quarantined == 0 and first.rows_duplicate == 0
    assert first.entities["members"] == 23_570
    with runtime.warehouse() as warehouse:
        counts = warehouse.counts()
        orders = warehouse.table("orders").to_polars()
    assert counts["orders"] == counts["order_lines"] == 69_659
    assert counts["members"] == 23_570
    assert orders["amount"].sum() == pytest.approx(2_500_315.63, abs=0.005)
    assert orders["ordered_at"].min() == datetime(1997, 1, 1)
    assert orders.select(pl.col("ordered_at").max()).item() == datetime(1998, 6, 30)

    again = run_import(runtime, "cdnow", path)

    assert again.rows_imported == 0 and again.rows_duplicate == 69_659
    with runtime.warehouse() as warehouse:
        assert warehouse.counts() == counts
