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
