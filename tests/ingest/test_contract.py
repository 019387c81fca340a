"""The importer contract, checked on every registered importer with a small valid sample."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from patron.errors import ImportFormatError
from patron.ingest.registry import IMPORTERS
from patron.ingest.service import list_imports, run_import
from patron.runtime import Runtime

ONLINE_RETAIL = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom
"""
CDNOW = (
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00001 19970101  1   11.77\r\n"
    " 00002 19970112  1   12.00\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00003 19970102  2   20.76\r\n"
)
TAOBAO = """1,2268318,2520377,pv,1511544070
1,2333346,2520771,cart,1511561733
1,2333346,2520771,cart,1511561733
100,2576651,149192,buy,1511572885
"""
MEMBERS = """customer_ref,full_name,mail,joined,region
C-1,Ada Lovelace,ada@example.com,2021-03-01 10:00:00,London
C-2,Grace Hopper,grace@example.com,2021-04-02,New York
C-3,,,2021-05-03T08:30:00,
"""
MEMBERS_MAPPING: dict[str, Any] = {
    "entity": "members",
    "source": "shop",
    "columns": {
        "member_id": "customer_ref",
        "name": "full_name",
        "email": "mail",
        "signup_at": "joined",
        "region": "region",
    },
}


@dataclass(frozen=True)
class Sample:
    """A valid file of one format, and the same file without one required column."""

    name: str
    content: str
    rows: int
    missing_column: str
    mapping: dict[str, Any] | None = None

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.content.encode())
        return path

    def write_without_column(self, folder: Path) -> Path:
        path = folder / f"broken-{self.name}"
        path.write_bytes(_drop_column(self.content, self.missing_column).encode())
        return path


def _drop_column(content: str, column: str) -> str:
    """Remove a named column (by header) or, for headerless Taobao, the last field."""
    lines = content.splitlines(keepends=True)
    if column == "timestamp":
        return "".join(line.rsplit(",", 1)[0] + "\n" for line in lines)
    if "," in lines[0]:
        index = lines[0].rstrip().split(",").index(column)
        return "".join(
            ",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != index) + "\n" for line in lines
        )
    index = lines[0].split().index(column)
    return "".join(" ".join(f for i, f in enumerate(line.split()) if i != index) + "\r\n" for line in lines)


SAMPLES: dict[str, Sample] = {
    "online-retail": Sample("retail.csv", ONLINE_RETAIL, 4, "UnitPrice"),
    "cdnow": Sample("cdnow.txt", CDNOW, 4, "dollar_value"),
    "taobao": Sample("taobao.csv", TAOBAO, 4, "timestamp"),
    "generic": Sample("members.csv", MEMBERS, 3, "customer_ref", MEMBERS_MAPPING),
}


def test_every_registered_importer_has_a_contract_sample() -> None:
    assert set(SAMPLES) == set(IMPORTERS)


def test_generic_is_the_only_importer_that_needs_a_mapping() -> None:
    assert {fmt for fmt, cls in IMPORTERS.items() if cls.needs_mapping} == {"generic"}


@pytest.mark.parametrize("fmt", sorted(IMPORTERS))
class TestImporterContract:
    def test_every_row_is_imported_quarantined_or_duplicate(self, fmt: str, runtime: Runtime, tmp_path: Path) -> None:
        sample = SAMPLES[fmt]

        run = run_import(runtime, fmt, sample.write(tmp_path), mapping=sample.mapping)

        assert run.status == "completed"
        assert run.rows_read == sample.rows
        assert run.rows_read == run.rows_imported + run.rows_quarantined + run.rows_duplicate
        assert run.rows_quarantined == 0
        assert run.rows_imported == sample.rows

    def test_reimport_imports_nothing_new(self, fmt: str, runtime: Runtime, tmp_path: Path) -> None:
        sample = SAMPLES[fmt]
        path = sample.write(tmp_path)
        first = run_import(runtime, fmt, path, mapping=sample.mapping)
        with runtime.warehouse() as warehouse:
            counts = warehouse.counts()

        again = run_import(runtime, fmt, path, mapping=sample.mapping)

        assert again.rows_imported == 0
        assert again.rows_duplicate == first.rows_imported
        assert again.rows_read == again.rows_duplicate + again.rows_quarantined
        assert sum(again.entities.values()) == 0
        with runtime.warehouse() as warehouse:
            assert warehouse.counts() == counts

    def test_missing_file_is_a_format_error(self, fmt: str, runtime: Runtime, tmp_path: Path) -> None:
        with pytest.raises(ImportFormatError, match="not found"):
            run_import(runtime, fmt, tmp_path / "absent.csv", mapping=SAMPLES[fmt].mapping)

        [run] = list_imports(runtime)
        assert run.status == "failed"
        assert run.error is not None and "not found" in run.error

    def test_missing_required_column_is_named(self, fmt: str, runtime: Runtime, tmp_path: Path) -> None:
        sample = SAMPLES[fmt]
        path = sample.write_without_column(tmp_path)

        with pytest.raises(ImportFormatError, match=sample.missing_column):
            run_import(runtime, fmt, path, mapping=sample.mapping)
