"""The generic importer: mapping validation, every entity, file kinds, vault, real data."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from patron.errors import ValidationError
from patron.ingest.generic import GenericImporter, load_mapping, parse_mapping
from patron.ingest.service import quarantine_page, run_import
from patron.members.identity import member_key_of
from patron.members.vault_store import read_personal
from patron.runtime import Runtime
from tests.conftest import shared_data

MEMBERS = {"entity": "members", "columns": {"member_id": "id"}}


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def _table(runtime: Runtime, name: str) -> pl.DataFrame:
    with runtime.warehouse() as warehouse:
        frame: pl.DataFrame = warehouse.table(name).to_polars()
    return frame


# -- mapping validation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "field", "message"),
    [
        ({"entity": "customers", "columns": {}}, "mapping.entity", "Input should be 'members'"),
        ({"entity": "members"}, "mapping.columns", "Field required"),
        ({**MEMBERS, "colums": {}}, "mapping.colums", "Extra inputs are not permitted"),
        ({"entity": "members", "columns": {"member_id": 7}}, "mapping.columns.member_id", "valid string"),
        ({"entity": "members", "columns": {"member_id": " "}}, "mapping.columns.member_id", "at least 1 character"),
        ({**MEMBERS, "timestamp_format": "dd/mm/yyyy"}, "mapping.timestamp_format", "strftime"),
        ({**MEMBERS, "date_format": "yyyy"}, "mapping.date_format", "strftime"),
        ({**MEMBERS, "delimiter": "||"}, "mapping.delimiter", "at most 1 character"),
        ({**MEMBERS, "source": "my:shop"}, "mapping.source", "should match pattern"),
        (
            {"entity": "members", "columns": {"member_id": "id", "nickname": "nick"}},
            "mapping.columns.nickname",
            "'nickname' is not a field of members",
        ),
        ({"entity": "members", "columns": {"email": "mail"}}, "mapping.columns.member_id", "need the field"),
        (
            {"entity": "members", "columns": {"member_id": "id", "email": "id"}},
            "mapping.columns.email",
            "column 'id' is already mapped to 'member_id'",
        ),
        (
            {"entity": "order_lines", "columns": {"order_id": "o", "quantity": "q"}},
            "mapping.columns.unit_price",
            "'unit_price' or 'amount'",
        ),
        (
            {"entity": "order_lines", "columns": {"order_id": "o", "quantity": "q", "amount": "a", "member_id": "m"}},
            "mapping.columns.member_id",
            "needs 'ordered_at'",
        ),
        ({"entity": "orders", "columns": {"order_id": "o", "amount": "a"}}, "mapping.columns.ordered_at", "need"),
    ],
)
def test_bad_mappings_are_rejected_naming_the_key(mapping: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_mapping(mapping)

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert message in str(caught.value)


def test_a_mapping_is_required(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", "id\n1\n")

    with pytest.raises(ValidationError, match="needs a mapping") as caught:
        run_import(runtime, "generic", path)
    assert caught.value.field == "mapping"


def test_defaults_of_a_minimal_mapping() -> None:
    spec = parse_mapping(MEMBERS)

    assert (spec.source, spec.timestamp_format, spec.date_format, spec.delimiter) == ("generic", "iso", "%Y-%m-%d", ",")


# -- load_mapping -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_load_mapping_reads_yaml_and_json(tmp_path: Path, suffix: str) -> None:
    text = json.dumps(MEMBERS) if suffix == ".json" else "entity: members\ncolumns:\n  member_id: id\n"
    path = _write(tmp_path, f"mapping{suffix}", text)

    assert load_mapping(path) == MEMBERS


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("mapping.toml", "entity = 'members'", "must end in .yaml, .yml or .json"),
        ("mapping.yaml", "entity: [members\n", "not valid YAML"),
        ("mapping.json", "{entity: members}", "not valid JSON"),
        ("mapping.yaml", "- entity: members\n", "must hold one object"),
        ("mapping.yaml", "entity: members\ncolumns:\n  member: id\n", "mapping.columns.member:"),
    ],
)
def test_load_mapping_explains_what_is_wrong(tmp_path: Path, name: str, content: str, message: str) -> None:
    with pytest.raises(ValidationError, match="mapping") as caught:
        load_mapping(_write(tmp_path, name, content))

    assert message in str(caught.value)


def test_load_mapping_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mapping file not found"):
        load_mapping(tmp_path / "absent.yaml")


# -- entities -----------------------------------------------------------------------


def test_members_personal_fields_go_to_the_vault_only(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "crm.csv",
        "ref,who,mail,tel,street,born,since,sex,year,country,town,via\n"
        "7,Ada Lovelace,Ada@Example.com,+44 1,1 Main St,10/12/1990,2021-03-01T09:00:00+01:00,f,1990,UK,London,web\n",
    )
    columns = {
        "member_id": "ref", "name": "who", "email": "mail", "phone": "tel", "address": "street", "birthday": "born",
        "signup_at": "since", "gender": "sex", "birth_year": "year", "region": "country", "city": "town",
        "channel": "via",
    }  # fmt: skip
    mapping = {"entity": "members", "source": "crm", "date_format": "%d/%m/%Y", "columns": columns}

    run_import(runtime, "generic", path, mapping=mapping)

    key = member_key_of(runtime.store, "crm", "7")
    assert key is not None
    assert read_personal(runtime.store, runtime.cipher, key) == {
        "name": "Ada Lovelace",
        "email": "Ada@Example.com",
        "phone": "+44 1",
        "address": "1 Main St",
        "birthday": "1990-12-10",
    }
    [member] = _table(runtime, "members").to_dicts()
    assert member == {
        "member_key": key,
        "source": "crm",
        "signup_at": datetime(2021, 3, 1, 8, 0),  # the offset is converted to UTC
        "gender": "f",
        "birth_year": 1990,
        "region": "UK",
        "city": "London",
        "channel": "web",
    }


def test_products_from_parquet(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "products.parquet"
    pl.DataFrame({"sku": [1, 2], "label": ["Mug", "Plate"], "cost": [9.9, None]}).write_parquet(path)
    mapping = {
        "entity": "products",
        "source": "shop",
        "columns": {"product_id": "sku", "title": "label", "price": "cost"},
    }

    run = run_import(runtime, "generic", path, mapping=mapping)

    assert run.rows_imported == 2
    products = _table(runtime, "products").sort("product_key")
    assert products.select("product_key", "source", "title", "price").rows() == [
        ("shop:1", "shop", "Mug", 9.9),
        ("shop:2", "shop", "Plate", None),
    ]


def test_orders_from_gzipped_csv_with_guests_and_defaults(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(
        gzip.compress(b"no,buyer,at,total,state\nO1,M1,2024-02-01 10:00,30.5,Cancelled\nO2,,2024-02-02,12,\n")
    )
    columns = {"order_id": "no", "member_id": "buyer", "ordered_at": "at", "amount": "total", "status": "state"}

    run_import(runtime, "generic", path, mapping={"entity": "orders", "columns": columns})

    orders = _table(runtime, "orders").sort("order_key")
    assert orders.select("order_key", "ordered_at", "status", "amount", "discount").rows() == [
        ("generic:O1", datetime(2024, 2, 1, 10, 0), "cancelled", 30.5, 0.0),
        ("generic:O2", datetime(2024, 2, 2), "completed", 12.0, 0.0),
    ]
    assert orders["member_key"].null_count() == 1  # O2 is a guest order


def test_order_lines_default_line_numbers_amounts_and_derived_orders(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "lines.csv",
        "order,sku,qty,price,back,when,who\n"
        "A,S1,2,2.50,no,1704103200,M1\n"
        "B,S1,1,4.00,yes,1704189600,M2\n"
        "A,S2,3,1.00,,1704103200,M1\n",
    )
    columns = {
        "order_id": "order", "product_id": "sku", "quantity": "qty", "unit_price": "price", "returned": "back",
        "ordered_at": "when", "member_id": "who",
    }  # fmt: skip
    mapping = {"entity": "order_lines", "timestamp_format": "unix", "columns": columns}

    run = run_import(runtime, "generic", path, mapping=mapping)

    assert run.rows_imported == 3 and run.entities["orders"] == 2
    lines = _table(runtime, "order_lines").sort("order_key", "line_no")
    assert lines.select("order_key", "line_no", "product_key", "amount", "returned").rows() == [
        ("generic:A", 1, "generic:S1", 5.0, False),
        ("generic:A", 2, "generic:S2", 3.0, False),  # position within its order, in file order
        ("generic:B", 1, "generic:S1", 4.0, True),
    ]
    orders = _table(runtime, "orders").sort("order_key")
    assert orders.select("order_key", "ordered_at", "status", "amount").rows() == [
        ("generic:A", datetime(2024, 1, 1, 10, 0), "completed", 8.0),
        ("generic:B", datetime(2024, 1, 2, 10, 0), "completed", 4.0),
    ]


def test_order_lines_with_amount_only_derive_the_unit_price(tmp_path: Path) -> None:
    path = _write(tmp_path, "lines.csv", "order,qty,total\nA,4,10.00\nA,0,0\n")
    mapping = {"entity": "order_lines", "columns": {"order_id": "order", "quantity": "qty", "amount": "total"}}

    batch = GenericImporter(path, mapping).parse()

    assert batch.orders is None  # no ordered_at: lines only
    assert batch.order_lines is not None
    assert batch.order_lines.select("unit_price", "amount").rows() == [(2.5, 10.0), (0.0, 0.0)]


def test_events_default_key_is_stable_and_types_are_lowercased(runtime: Runtime, tmp_path: Path) -> None:
    content = (
        "who,what,item,when\nu1,VIEW,i1,2024-03-01T10:00:00Z\nu1,view,i1,2024-03-01T10:00:00Z\n,cart,,2024-03-01\n"
    )
    path = _write(tmp_path, "events.csv", content)
    columns = {"member_id": "who", "event_type": "what", "product_id": "item", "occurred_at": "when"}
    mapping = {"entity": "events", "source": "web", "columns": columns}

    first = run_import(runtime, "generic", path, mapping=mapping)
    again = run_import(runtime, "generic", path, mapping=mapping)

    assert first.rows_imported == 3 and again.rows_duplicate == 3
    events = _table(runtime, "events").sort("event_key")
    assert events.select("event_key", "event_type", "product_key", "occurred_at").rows() == [
        ("web:::cart:2024-03-01:1", "cart", None, datetime(2024, 3, 1)),
        ("web:u1:i1:view:2024-03-01T10:00:00Z:1", "view", "web:i1", datetime(2024, 3, 1, 10, 0)),
        ("web:u1:i1:view:2024-03-01T10:00:00Z:2", "view", "web:i1", datetime(2024, 3, 1, 10, 0)),
    ]


def test_events_with_an_id_column_are_keyed_by_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "events.csv", "id,what,when\ne1,view,2024-03-01 10:00:00.250\n")
    mapping = {"entity": "events", "columns": {"event_id": "id", "event_type": "what", "occurred_at": "when"}}

    batch = GenericImporter(path, mapping).parse()

    assert batch.events is not None
    assert batch.events.select("event_key", "occurred_at").row(0) == (
        "generic:e1",
        datetime(2024, 3, 1, 10, 0, 0, 250000),
    )


@pytest.mark.slow
def test_real_online_retail_file_as_generic_order_lines(runtime: Runtime) -> None:
    path = shared_data("online_retail/online_retail.csv.gz")
    columns = {
        "order_id": "InvoiceNo", "product_id": "StockCode", "quantity": "Quantity", "unit_price": "UnitPrice",
        "member_id": "CustomerID", "ordered_at": "InvoiceDate",
    }  # fmt: skip
    mapping = {"entity": "order_lines", "source": "retail", "timestamp_format": "%Y-%m-%d %H:%M:%S", "columns": columns}

    run = run_import(runtime, "generic", path, mapping=mapping)

    # 10,624 negative quantities (cancellations and write-offs) and 2 negative prices are quarantined
    assert run.rows_read == 541_909
    assert run.rows_quarantined == 10_626
    assert run.rows_imported == 531_283
    assert run.entities["orders"] == 20_726
    lines = _table(runtime, "order_lines")
    assert lines["amount"].sum() == pytest.approx(10_666_684.544, abs=0.01)

    again = run_import(runtime, "generic", path, mapping=mapping)

    assert again.rows_imported == 0 and again.rows_duplicate == 531_283


def test_a_strftime_layout_with_an_offset_is_converted_to_utc(tmp_path: Path) -> None:
    path = _write(tmp_path, "events.csv", "what,when\nview,01.03.2024 10:00 +0200\nview,01.03.2024 10:00\n")
    mapping = {
        "entity": "events",
        "timestamp_format": "%d.%m.%Y %H:%M %z",
        "columns": {"event_type": "what", "occurred_at": "when"},
    }

    batch = GenericImporter(path, mapping).parse()

    assert batch.events is not None
    assert batch.events["occurred_at"].to_list() == [datetime(2024, 3, 1, 8, 0)]
    assert batch.quarantine.select("row_number", "field", "reason").rows() == [
        (2, "when", "not a valid timestamp (%d.%m.%Y %H:%M %z)")
    ]


# -- inventory ------------------------------------------------------------------

STOCK_COLUMNS = {
    "product_id": "sku",
    "updated_at": "counted_at",
    "on_hand": "stock",
    "lead_time_days": "lead",
    "safety_stock": "safety",
}
STOCK_FILE = (
    "sku,counted_at,stock,lead,safety,note\n"
    "A1,2024-03-01 18:00,40,7,10,fine\n"
    "A2,2024-03-01 18:00,-3,7,5,negative stock\n"
    "A3,2024-03-01 18:00,12,400,0,lead time too long\n"
    "A4,yesterday,5,3,1,no timestamp\n"
    "A1,2024-03-01T18:00:00,41,7,10,same product and time as row 1\n"
    "A1,2024-03-08 18:00,25,7,10,a later count of A1\n"
    "A5,2024-03-01 18:00,3.5,2,1,half a unit\n"
    "A6,2024-03-01 18:00,8,2,,no safety stock: 0\n"
    "A7,2024-03-01 18:00,8,,1,no lead time\n"
)


def test_inventory_counts_with_bad_rows_quarantined(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(tmp_path, "stock.csv", STOCK_FILE)
    mapping = {"entity": "inventory", "source": "shop", "columns": STOCK_COLUMNS}

    run = run_import(runtime, "generic", path, mapping=mapping)

    assert (run.rows_read, run.rows_imported, run.rows_quarantined, run.rows_duplicate) == (9, 3, 6, 0)
    page = quarantine_page(runtime, run.id, page_size=50)
    assert [(q.row_number, q.field, q.reason) for q in page.items] == [
        (2, "stock", "negative on hand"),
        (3, "lead", "lead time outside 0..365 days"),
        (4, "counted_at", "not a valid timestamp (iso)"),
        (5, "counted_at", "duplicate key: an earlier row of this file has the same sku, counted_at"),
        (7, "stock", "not a whole number"),
        (9, "lead", "required value is missing"),
    ]
    assert "note" not in json.loads(page.items[0].raw)  # unmapped columns never enter Patron
    stock = _table(runtime, "inventory").sort("product_key", "updated_at")
    assert stock.rows() == [
        ("shop:A1", datetime(2024, 3, 1, 18, 0), 40, 7, 10),
        ("shop:A1", datetime(2024, 3, 8, 18, 0), 25, 7, 10),
        ("shop:A6", datetime(2024, 3, 1, 18, 0), 8, 2, 0),
    ]

    again = run_import(runtime, "generic", path, mapping=mapping)

    assert (again.rows_imported, again.rows_duplicate, again.rows_quarantined) == (0, 3, 6)


def test_inventory_mapping_needs_product_time_stock_and_lead_time() -> None:
    columns = {k: v for k, v in STOCK_COLUMNS.items() if k != "lead_time_days"}

    with pytest.raises(ValidationError) as caught:
        parse_mapping({"entity": "inventory", "columns": columns})

    assert caught.value.field == "mapping.columns.lead_time_days"
