"""Malformed and oversized import files: each refused or quarantined with a clear error, in bounded memory.

Bad encodings and bombs fail the run as a whole (recorded as failed, the
warehouse unchanged); a bad value (a NUL character, a 10 MB field) only
quarantines its row. Every file goes through ``run_import``, the one door of
the CLI and of any upload.
"""

from __future__ import annotations

import codecs
import gzip
import re
import secrets
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.errors import ImportFormatError
from patron.ingest.service import list_imports, quarantine_page, run_import
from patron.ingest.source import MAX_COLUMNS, MAX_LINE_BYTES
from patron.ingest.validation import MAX_VALUE_CHARS
from patron.runtime import Runtime

MAPPING = {"entity": "members", "columns": {"member_id": "id", "name": "name"}}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _fails(runtime: Runtime, path: Path, message: str, fmt: str = "generic") -> None:
    with runtime.warehouse() as warehouse:
        warehouse.ensure_schema()
        before = warehouse.counts()
    with pytest.raises(ImportFormatError, match=message):
        run_import(runtime, fmt, path, mapping=MAPPING if fmt == "generic" else None)
    run = list_imports(runtime, limit=1)[0]
    assert run.status == "failed" and re.search(message, run.error or "")
    with runtime.warehouse() as warehouse:
        assert warehouse.counts() == before


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("latin1.csv", "id,name\n1,Zoë\n".encode("latin-1"), r"not UTF-8 text \(byte 0xeb at offset 12\)"),
        ("gbk.csv", "id,name\n1,张三\n".encode("gbk"), "not UTF-8 text.*GBK"),
        ("utf16.csv", "id,name\n1,Zoë\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        ("utf32.csv", codecs.BOM_UTF32_LE + "id,name\n".encode("utf-32-le"), "is UTF-32 text"),
        ("utf16-no-bom.csv", "id,name\n1,Zoe\n".encode("utf-16-le"), "mostly NUL bytes"),
        ("binary.csv", bytes(range(256)) * 64, "mostly NUL bytes|not UTF-8 text"),
    ],
)
def test_files_that_are_not_utf8_are_refused_naming_the_encoding(
    name: str, data: bytes, message: str, runtime: Runtime, tmp_path: Path
) -> None:
    _fails(runtime, _write(tmp_path, name, data), message)


def test_invalid_utf8_far_into_a_file_is_refused_without_parser_jargon(runtime: Runtime, tmp_path: Path) -> None:
    rows = "".join(f"{n},Member {n}\n" for n in range(20_000)).encode()  # the bad byte is past the first block
    path = _write(tmp_path, "late.csv", b"id,name\n" + rows + "20001,Zoë\n".encode("latin-1"))

    _fails(runtime, path, "it is not valid UTF-8 text; convert it to UTF-8")


def test_a_nul_character_quarantines_its_row_only(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(tmp_path, "nul.csv", b"id,name\n1,Ann\n2,B\x00b\n3,Cy\n")

    run = run_import(runtime, "generic", path, mapping=MAPPING)

    assert (run.rows_read, run.rows_imported, run.rows_quarantined) == (3, 2, 1)
    [row] = quarantine_page(runtime, run.id).items
    assert (row.row_number, row.field, row.reason) == (2, "name", "contains a NUL character")
    assert "\x00" not in row.raw  # stored in any store, PostgreSQL included


def test_a_10_mb_field_quarantines_its_row_and_is_not_kept_whole(runtime: Runtime, tmp_path: Path) -> None:
    huge = b"x" * 10_000_000
    path = _write(tmp_path, "huge.csv", b"id,name\n1,Ann\n2," + huge + b"\n3,Cy\n")

    run = run_import(runtime, "generic", path, mapping=MAPPING)

    assert (run.rows_read, run.rows_imported, run.rows_quarantined) == (3, 2, 1)
    [row] = quarantine_page(runtime, run.id).items
    assert (row.field, row.reason) == ("name", f"value longer than {MAX_VALUE_CHARS:,} characters")
    assert len(row.raw) <= 4096


def test_a_gzip_bomb_is_refused_in_bounded_memory(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as bomb:
        bomb.write(b"id,name\n")
        block = b"1,a\n" * (1 << 18)  # 1 MiB
        for _ in range(64):
            bomb.write(block)
    assert path.stat().st_size < 200_000  # 64 MiB of text in a small file
    rt = Runtime(runtime.settings.model_copy(update={"import_max_bytes": 8 << 20}))
    try:
        tracemalloc.start()
        with pytest.raises(ImportFormatError, match=r"larger than 8,388,608 bytes once decompressed"):
            run_import(rt, "generic", path, mapping=MAPPING)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        rt.close()

    assert peak < 16 << 20  # streamed and counted, never expanded whole


def test_a_parquet_file_declaring_more_than_the_limit_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    table = pa.table({"id": [str(n) for n in range(200_000)], "name": ["x" * 20] * 200_000})
    pq.write_table(table, path, compression="zstd")
    rt = Runtime(runtime.settings.model_copy(update={"import_max_bytes": 1 << 20}))
    try:
        with pytest.raises(ImportFormatError, match=r"declares .* bytes of data; at most 1,048,576"):
            run_import(rt, "generic", path, mapping=MAPPING)
    finally:
        rt.close()


def test_zstd_compressed_text_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    data = pa.Codec("zstd").compress(b"id,name\n1,Ann\n", asbytes=True)

    _fails(runtime, _write(tmp_path, "members.csv.zst", data), "is zstd-compressed; only gzip is accepted")


def test_a_damaged_gzip_file_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    rows = "".join(f"{n},{secrets.token_hex(8)}\n" for n in range(5000)).encode()
    data = gzip.compress(b"id,name\n" + rows)[:-200]  # the end of the stream is missing

    _fails(runtime, _write(tmp_path, "cut.csv.gz", data), "is not a valid gzip file")


def test_a_million_tiny_columns_are_refused_before_parsing(runtime: Runtime, tmp_path: Path) -> None:
    million = _write(tmp_path, "million.csv", b",".join([b"c"] * 1_000_000) + b"\n" + b"1\n")
    many = _write(tmp_path, "many.csv", ",".join(["id", "name", *(f"c{n}" for n in range(5000))]).encode() + b"\n")

    _fails(runtime, million, f"the first line is longer than {MAX_LINE_BYTES:,} bytes")
    _fails(runtime, many, f"has 5,002 columns; at most {MAX_COLUMNS:,} are accepted")


def test_a_row_with_more_fields_than_the_header_fails_in_plain_words(runtime: Runtime, tmp_path: Path) -> None:
    path = _write(tmp_path, "ragged.csv", b"id,name\n1,Ann\n2," + b",".join([b"x"] * 100_000) + b"\n")

    _fails(runtime, path, "a row has more fields than the header")


def test_a_headerless_line_format_is_checked_too(runtime: Runtime, tmp_path: Path) -> None:
    """The Taobao importer reads lines without a header: the same encoding and line-length checks apply."""
    path = _write(tmp_path, "behaviour.csv", b"1,2,3,pv,1511544070\n" + "4,5,6,pv,Zoë\n".encode("latin-1"))

    _fails(runtime, path, "not UTF-8 text", fmt="taobao")
