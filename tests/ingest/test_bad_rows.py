"""Deliberately broken files: each bad row is quarantined with its row, field and reason."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from patron.errors import ImportFormatError
from patron.ingest.generic import load_mapping
from patron.ingest.schemas import ImportRead
from patron.ingest.service import quarantine_page, run_import
from patron.runtime import Runtime

FIXTURES = Path(__file__).parent / "fixtures"

Expected = list[tuple[int, str, str]]


def _quarantined(runtime: Runtime, run: ImportRead) -> Expected:
    page = quarantine_page(runtime, run.id, page=1, page_size=500)
    assert page.total == run.rows_quarantined
    return [(item.row_number, item.field, item.reason) for item in page.items]


def _raw(runtime: Runtime, run: ImportRead, row_number: int) -> dict[str, Any]:
    page = quarantine_page(runtime, run.id, page=1, page_size=500)
    [item] = [i for i in page.items if i.row_number == row_number]
    loaded: dict[str, Any] = json.loads(item.raw)
    return loaded


def _assert_reconciles(run: ImportRead, *, read: int, imported: int, expected: Expected) -> None:
    assert run.status == "completed"
    assert run.rows_read == read
    assert run.rows_imported == imported
    assert run.rows_quarantined == len(expected)
    assert run.rows_duplicate == 0
    assert run.rows_read == run.rows_imported + run.rows_quarantined + run.rows_duplicate


def test_online_retail_broken_rows(runtime: Runtime) -> None:
    expected = [
        (2, "InvoiceDate", "not a valid timestamp (%Y-%m-%d %H:%M:%S)"),
        (3, "Quantity", "not a whole number"),
        (4, "StockCode", "required value is missing"),
        (5, "UnitPrice", "negative unit price (an adjustment, not a sale)"),
        (6, "Quantity", "required value is missing"),  # too few fields: the rest reads as empty
    ]

    run = run_import(runtime, "online-retail", FIXTURES / "online_retail_broken.csv")

    _assert_reconciles(run, read=7, imported=2, expected=expected)
    assert _quarantined(runtime, run) == expected


def test_cdnow_broken_rows(runtime: Runtime) -> None:
    expected = [
        (2, "date", "not a valid timestamp (%Y%m%d)"),  # 30 February
        (3, "date", "not a valid timestamp (%Y%m%d)"),  # 1997-01-02
        (4, "number_of_cds", "not a whole number"),
        (5, "number_of_cds", "negative number of CDs"),
        (6, "dollar_value", "not a number"),
        (7, "dollar_value", "negative dollar value"),
        (8, "(row)", "expected 4 fields, found 3"),  # the customer id is missing
        (9, "customer_id", "customer id is not a whole number"),
        (10, "(row)", "expected 4 fields, found 5"),
        (11, "(row)", "empty line"),
    ]

    run = run_import(runtime, "cdnow", FIXTURES / "cdnow_broken.txt")

    _assert_reconciles(run, read=12, imported=2, expected=expected)
    assert _quarantined(runtime, run) == expected
    assert _raw(runtime, run, 8) == {"line": "19970107  1   9.99"}
    assert _raw(runtime, run, 6)["dollar_value"] == "abc"
    with runtime.warehouse() as warehouse:
        keys = warehouse.table("orders").order_key.execute().tolist()
    assert sorted(keys) == ["cdnow:1:19970101:1", "cdnow:1:19970101:2"]  # same customer and day: ordinal 2


def test_taobao_broken_rows(runtime: Runtime) -> None:
    expected = [
        (2, "behavior", "unknown behavior (not pv, fav, cart, buy)"),
        (3, "timestamp", "not a whole number"),
        (4, "timestamp", "timestamp outside 1970..2100"),
        (5, "user_id", "not a whole number"),
        (6, "item_id", "required value is missing"),
        (7, "(row)", "expected 5 fields, found 4"),
        (10, "category_id", "not a whole number"),
    ]

    run = run_import(runtime, "taobao", FIXTURES / "taobao_broken.csv")

    _assert_reconciles(run, read=10, imported=3, expected=expected)
    assert _quarantined(runtime, run) == expected
    with runtime.warehouse() as warehouse:
        keys = sorted(warehouse.table("events").event_key.execute().tolist())
    assert keys == [
        "taobao:1:2268318:pv:1511544070:1",
        "taobao:1:2333346:cart:1511561733:1",
        "taobao:1:2333346:cart:1511561733:2",  # an identical row is a second event, not a duplicate
    ]


def test_generic_members_broken_rows_and_redaction(runtime: Runtime) -> None:
    expected = [
        (2, "customer_ref", "required value is missing"),
        (3, "mail", "e-mail without '@'"),
        (4, "birthday", "not a valid date (%Y-%m-%d)"),
        (5, "joined", "not a valid timestamp (iso)"),
        (6, "birth_year", "not a whole number"),
        (7, "birth_year", f"birth year outside 1900..{date.today().year}"),
        (8, "customer_ref", "duplicate key: an earlier row of this file has the same customer_ref"),
    ]
    mapping = load_mapping(FIXTURES / "members_broken.yaml")

    run = run_import(runtime, "generic", FIXTURES / "members_broken.csv", mapping=mapping)

    _assert_reconciles(run, read=9, imported=2, expected=expected)
    assert _quarantined(runtime, run) == expected
    bad_mail = _raw(runtime, run, 3)
    assert bad_mail["mail"] == "[redacted]" and bad_mail["full_name"] == "[redacted]"
    assert bad_mail["phone"] is None  # empty stays empty
    assert bad_mail["customer_ref"] == "C-3" and bad_mail["joined"] == "2021-03-03"
    assert "notes" not in bad_mail  # unmapped columns are never read
    page = quarantine_page(runtime, run.id, page=1, page_size=500)
    everything = " ".join(item.raw for item in page.items)
    for secret in ("grace.example.com", "Grace Hopper", "1912-06-31", "Ada Again", "ada2@example.com"):
        assert secret not in everything


def test_generic_order_lines_broken_rows(runtime: Runtime) -> None:
    expected = [
        (3, "qty", "negative quantity"),
        (4, "price", "negative unit price"),
        (5, "status", "unknown status (use completed or cancelled)"),
        (6, "placed", "not a valid timestamp (%Y-%m-%d %H:%M:%S)"),
        (7, "qty", "not a whole number"),
        (8, "order", "required value is missing"),
        (10, "line", "duplicate key: an earlier row of this file has the same order, line"),
        (11, "line", "line number outside 1..2147483647"),
    ]
    mapping = load_mapping(FIXTURES / "order_lines_broken.json")

    run = run_import(runtime, "generic", FIXTURES / "order_lines_broken.csv", mapping=mapping)

    _assert_reconciles(run, read=11, imported=3, expected=expected)
    assert _quarantined(runtime, run) == expected
    with runtime.warehouse() as warehouse:
        orders = warehouse.table("orders").to_polars().sort("order_key")
    assert orders["order_key"].to_list() == ["shop:A1", "shop:A7"]
    assert orders["amount"].to_list() == [25.5, 6.0]
    assert orders["status"].to_list() == ["completed", "cancelled"]
    assert orders["member_key"].null_count() == 1  # A7 is a guest order


def test_generic_products_broken_rows(runtime: Runtime) -> None:
    mapping = {
        "entity": "products",
        "columns": {"product_id": "sku", "title": "name", "category": "cat", "brand": "brand", "price": "list_price"},
    }
    expected = [
        (2, "list_price", "negative price"),
        (3, "list_price", "not a number"),
        (4, "sku", "required value is missing"),
        (5, "sku", "duplicate key: an earlier row of this file has the same sku"),
    ]

    run = run_import(runtime, "generic", FIXTURES / "products_broken.csv", mapping=mapping)

    _assert_reconciles(run, read=6, imported=2, expected=expected)
    assert _quarantined(runtime, run) == expected
    assert _raw(runtime, run, 2)["name"] == "Plate"  # a product title is not personal


def test_generic_events_broken_rows(runtime: Runtime) -> None:
    mapping = {
        "entity": "events",
        "source": "app",
        "delimiter": ";",
        "timestamp_format": "unix",
        "columns": {
            "member_id": "user",
            "product_id": "item",
            "event_type": "action",
            "occurred_at": "ts",
            "session_id": "session",
        },
    }
    expected = [
        (3, "action", "required value is missing"),
        (4, "ts", "not a valid timestamp (unix)"),
    ]

    run = run_import(runtime, "generic", FIXTURES / "events_broken.csv", mapping=mapping)

    _assert_reconciles(run, read=5, imported=3, expected=expected)
    assert _quarantined(runtime, run) == expected


def test_csv_row_with_too_many_fields_rejects_the_file(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("sku,list_price\nP1,1.00\nP2,2.00,surplus\n")
    mapping = {"entity": "products", "columns": {"product_id": "sku", "price": "list_price"}}

    with pytest.raises(ImportFormatError, match="cannot be read as a table"):
        run_import(runtime, "generic", path, mapping=mapping)


def test_file_that_is_not_utf8_is_a_format_error(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(
        " customer_id date number_of_cds dollar_value\r\n 00001 19970101 1 \xa311.77\r\n".encode("latin-1")
    )

    with pytest.raises(ImportFormatError):
        run_import(runtime, "cdnow", path)
