"""What an import may read: the checks a file passes before any parser opens it.

- With ``PATRON_IMPORT_DIR`` set, only files inside that directory, after
  following links (``..``, absolute paths and symlinks out are refused); a
  relative path is taken inside it.
- Regular files only: never a directory, a device or a pipe.
- At most ``PATRON_IMPORT_MAX_BYTES`` once decompressed (the parsers hold
  the whole file in memory): a gzip file is decompressed as a stream and
  counted, so a bomb is refused after the limit, never expanded in memory;
  a Parquet file is judged by the sizes its footer declares. zstd and zlib,
  which the parser would also expand, are refused.
- Text: a UTF-16 or UTF-32 byte-order mark, text that is mostly NUL bytes,
  or bytes that are not UTF-8 near the start are refused, naming the likely
  cause; a first line longer than ``MAX_LINE_BYTES`` is refused; a header
  of more than ``MAX_COLUMNS`` columns is refused (``count_columns``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patron.errors import ImportFormatError, ValidationError
from patron.settings import Settings

__all__ = ["MAX_COLUMNS", "MAX_LINE_BYTES", "admit_source", "count_columns", "first_line", "resolve_source"]

MAX_COLUMNS = 1_000
MAX_LINE_BYTES = 1 << 20
_BLOCK = 1 << 20
_SNIFF = 1 << 16
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_ZLIB = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def resolve_source(path: Path, import_dir: Path | None) -> Path:
    """The real path of the file to read; refused outside ``import_dir`` (when set) or when not a regular file."""
    if import_dir is not None:
        root = import_dir.resolve()
        real = (root / path).resolve()  # an absolute ``path`` replaces ``root``
        if not real.is_relative_to(root):
            raise ValidationError(f"{path} is outside the import directory (PATRON_IMPORT_DIR)", field="path")
    else:
        real = path.resolve()
    if not real.exists():
        raise ImportFormatError(f"file not found: {path.name}")
    if not real.is_file():
        raise ValidationError(f"{path.name} is not a regular file (a directory, device or pipe)", field="path")
    return real


def admit_source(path: Path, settings: Settings) -> Path:
    """Resolve ``path`` and check its size and text as the module docstring says; returns the real path."""
    real = resolve_source(path, settings.import_dir)
    if real.suffix == ".parquet":
        _check_parquet(real, settings.import_max_bytes)
        return real
    with _decompressed(real) as stream:
        head = stream.read(_SNIFF)
        _check_text(real.name, head)
        size = len(head)
        while block := stream.read(_BLOCK):
            size += len(block)
            if size > settings.import_max_bytes:
                raise ImportFormatError(
                    f"{real.name} is larger than {settings.import_max_bytes:,} bytes once decompressed "
                    "(PATRON_IMPORT_MAX_BYTES)"
                )
    if size > settings.import_max_bytes:
        raise ImportFormatError(f"{real.name} is larger than {settings.import_max_bytes:,} bytes")
    first_line(real)
    return real


def first_line(path: Path) -> bytes:
    """The file's first line (decompressed), refused if longer than ``MAX_LINE_BYTES``."""
    with _decompressed(path) as stream:
        line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise ImportFormatError(f"{path.name}: the first line is longer than {MAX_LINE_BYTES:,} bytes")
    return line


def count_columns(path: Path, separator: str) -> int:
    """The number of columns in the header line, refused above ``MAX_COLUMNS``."""
    text = first_line(path).decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
    fields = next(csv.reader([text], delimiter=separator), [])
    if len(fields) > MAX_COLUMNS:
        raise ImportFormatError(f"{path.name} has {len(fields):,} columns; at most {MAX_COLUMNS:,} are accepted")
    return len(fields)


@contextmanager
def _decompressed(path: Path) -> Iterator[io.BufferedIOBase]:
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_ZSTD) or magic[:2] in _ZLIB:
            kind = "zstd" if magic.startswith(_ZSTD) else "zlib"
            raise ImportFormatError(f"{path.name} is {kind}-compressed; only gzip is accepted")
        if not magic.startswith(_GZIP):
            yield raw
            return
        try:
            with gzip.GzipFile(fileobj=raw) as unpacked:
                yield unpacked
        except (OSError, EOFError) as exc:
            raise ImportFormatError(f"{path.name} is not a valid gzip file: {exc}") from None


def _check_text(name: str, head: bytes) -> None:
    """Refuse text that is not UTF-8, judged by its first block."""
    for bom, encoding in _BOMS.items():
        if head.startswith(bom):
            raise ImportFormatError(f"{name} is {encoding} text; save it as UTF-8")
    if head and head.count(0) * 4 > len(head):
        raise ImportFormatError(f"{name} is binary or UTF-16 text (mostly NUL bytes); save it as UTF-8 text")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"{name} is not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8 (from GBK/GB18030 or Latin-1, for instance)"
        ) from None


def _check_parquet(path: Path, limit: int) -> None:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise ImportFormatError(f"{path.name} is not a readable Parquet file: {exc}") from None
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if declared > limit:
        raise ImportFormatError(
            f"{path.name} declares {declared:,} bytes of data; at most {limit:,} are accepted (PATRON_IMPORT_MAX_BYTES)"
        )
