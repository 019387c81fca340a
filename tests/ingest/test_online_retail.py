"""The online-retail importer on the real UCI file: every row accounted for."""

from __future__ import annotations

import pytest

from patron.ingest.service import quarantine_page, run_import
from patron.runtime import Runtime
from tests.conftest import shared_data

pytestmark = pytest.mark.slow


def test_online_retail_import_reconciles_and_is_idempotent(runtime: Runtime) -> None:
    path = shared_data("online_retail/online_retail.csv.gz")

    first = run_import(runtime, "online-retail", path)

    assert first.status == "completed"
    assert first.rows_read == 541_909
    assert first.rows_imported + first.rows_quarantined + first.rows_duplicate == first.rows_read
    assert first.rows_duplicate == 0  # exactly repeated lines are kept as real lines
    assert first.entities["members"] == 4_372
    assert first.notes["guest_lines"] + first.rows_quarantined > 0
    with runtime.warehouse() as warehouse:
        counts = warehouse.counts()
    assert counts["members"] == 4_372
    assert counts["order_lines"] == first.rows_imported

    again = run_import(runtime, "online-retail", path)

    assert again.rows_imported == 0
    assert again.rows_duplicate == first.rows_imported
    assert again.rows_quarantined == first.rows_quarantined
    with runtime.warehouse() as warehouse:
        assert warehouse.counts() == counts


def test_online_retail_quarantine_names_row_field_and_reason(runtime: Runtime) -> None:
    path = shared_data("online_retail/online_retail.csv.gz")
    run = run_import(runtime, "online-retail", path)

    page = quarantine_page(runtime, run.id, page=1, page_size=500)

    assert page.total == run.rows_quarantined
    reasons = {(item.field, item.reason) for item in page.items}
    assert ("Quantity", "negative quantity outside a cancellation invoice (stock write-off)") in reasons
    first = page.items[0]
    assert first.row_number > 0 and '"InvoiceNo"' in first.raw


def test_a_key_repeated_within_one_batch_is_imported_once(runtime: Runtime) -> None:
    import polars as pl

    from patron.ingest.contract import QUARANTINE_SCHEMA, ParsedBatch
    from patron.ingest.service import import_batch

    products = pl.DataFrame({"product_key": ["s:p1", "s:p1", "s:p2"], "title": ["first", "second", "other"]})
    batch = ParsedBatch(
        source="s",
        rows_read=3,
        primary="products",
        quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA),
        products=products,
    )

    run = import_batch(runtime, "test", "inline", lambda: batch)

    assert (run.rows_imported, run.rows_duplicate) == (2, 1)
    with runtime.warehouse() as warehouse:
        titles = warehouse.table("products").to_polars().sort("product_key")["title"].to_list()
    assert titles == ["first", "other"]
