"""Looking for vault values in text, tables and files: what the pseudonymization test scans with."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from patron.members.vault import normalize_email

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"\d{7,}")
_LONGEST_PREFIX = 3  # a country code before a phone number: "+86 138..." has up to three more digits


@dataclass(frozen=True)
class Finding:
    where: str
    field: str
    value: str


@dataclass(frozen=True)
class Needles:
    """Every vault value, normalized the way it would be found."""

    emails: frozenset[str]
    phones: frozenset[str]  # digits only
    birthdays: frozenset[str]
    texts: Mapping[str, str]  # names (two characters or more) and addresses -> their field

    @classmethod
    def from_vault(cls, entries: Iterable[Mapping[str, str | None]]) -> Needles:
        emails, phones, birthdays, texts = set(), set(), set(), {}
        for entry in entries:
            if email := entry.get("email"):
                emails.add(normalize_email(email))
            if phone := entry.get("phone"):
                phones.add("".join(ch for ch in phone if ch.isdigit()))
            if birthday := entry.get("birthday"):
                birthdays.add(birthday)
            for field in ("name", "address"):
                value = (entry.get(field) or "").strip()
                if len(value) >= 2:
                    texts[value] = field
        return cls(frozenset(emails), frozenset(phones), frozenset(birthdays), texts)

    @property
    def count(self) -> int:
        return len(self.emails) + len(self.phones) + len(self.birthdays) + len(self.texts)

    def find(self, text: str, where: str) -> list[Finding]:
        """Vault values inside ``text`` (e-mails case-insensitively, phones by their digits, URL-encoded too)."""
        found = self._find(text, where)
        if "%" in text or "+" in text:
            seen = {(f.field, f.value) for f in found}
            decoded = self._find(unquote_plus(text), where + " (URL-decoded)")
            found += [f for f in decoded if (f.field, f.value) not in seen]
        return found

    def _find(self, text: str, where: str) -> list[Finding]:
        found: list[Finding] = []
        if "@" in text:
            lowered = text.lower()
            found += [Finding(where, "email", e) for e in self.emails if e in lowered]
        lengths = {len(p) for p in self.phones}
        for run in _DIGITS.findall(text):
            for size in lengths:
                if size <= len(run) <= size + _LONGEST_PREFIX and run[-size:] in self.phones:
                    found.append(Finding(where, "phone", run[-size:]))
        found += [Finding(where, "birthday", d) for d in set(_DATE.findall(text)) & self.birthdays]
        found += [Finding(where, field, value) for value, field in self.texts.items() if value in text]
        return found


def arrow_text(table: pa.Table) -> Iterator[tuple[str, str]]:
    """Each column of an Arrow table as one text (values cast to strings, one per line)."""
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            values = [v.decode("utf-8", "replace") if v is not None else "" for v in column.to_pylist()]
        else:
            values = ["" if v is None else str(v) for v in column.to_pylist()]
        yield name, "\n".join(values)


def _json_text(raw: bytes) -> str | None:
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False)  # \u escapes spelled out
    except (ValueError, UnicodeDecodeError):
        return None


def _array_text(array: np.ndarray) -> str:
    if array.dtype.kind in "USO":
        return "\n".join(str(v) for v in array.ravel().tolist())
    return ""


def file_texts(path: Path, raw: bytes | None = None, name: str | None = None) -> Iterator[tuple[str, str]]:
    """Every reading of a file as text: its bytes, and its tables, arrays or JSON where it holds them."""
    data = path.read_bytes() if raw is None else raw
    label = name or str(path)
    yield label, data.decode("utf-8", "replace")
    yield label + " (latin-1)", data.decode("latin-1")
    if (text := _json_text(data)) is not None:
        yield label + " (json)", text
    if data[:4] == b"PAR1":
        for column, text in arrow_text(pq.read_table(io.BytesIO(data))):
            yield f"{label}:{column}", text
    if label.endswith(".npy"):
        yield label + " (array)", _array_text(np.load(io.BytesIO(data), allow_pickle=False))
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from file_texts(path, archive.read(member), f"{label}!{member}")
