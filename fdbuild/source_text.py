"""Source values must be valid Unicode; when one is not, say exactly where.

A source row's values go into keys (canonical JSON, UTF-8), artifacts (Parquet strings)
and exports, and none of those can hold invalid text. It arrives three ways:

* bytes that are not UTF-8 in a ``.jsonl`` or ``.csv`` file (Arrow's JSON reader keeps
  them in a string column; its CSV reader silently turns the column into ``binary``);
* a JSON escape of a lone surrogate (``"\\ud800"``), which ``json.loads`` accepts and
  which no UTF-8 writer does;
* a Parquet string column holding invalid UTF-8 (the reader does not check).

So a table read from a source is validated once (Arrow's full validation checks UTF-8
at C speed); only when that fails is the file scanned again, slowly, to name the line
(JSONL, CSV) or row index (Parquet) and the column. Every failure is a ``SpecError``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.errors import SpecError

if TYPE_CHECKING:
    import pyarrow as pa

SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A JSON escape in U+D800..U+DFFF: a line holding one needs its strings checked."""


def valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_invalid(value: Any, where: str = "") -> str | None:
    """Path (``q``, ``meta.tags[2]``) of the first string or key in ``value`` that is not
    valid Unicode, or None."""
    if isinstance(value, str):
        return None if valid_text(value) else where
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and not valid_text(key):
                return f"{where}.<a key>" if where else "<a key>"
            found = first_invalid(item, inner)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = first_invalid(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def column_of(where: str) -> str:
    """The top-level column of a value path (``meta.tags[2]`` -> ``meta``)."""
    return re.split(r"[.\[]", where, maxsplit=1)[0]


def describe(where: str) -> str:
    column = column_of(where)
    inner = f" (at {where})" if where != column else ""
    return f"column '{column}'{inner}"


def decode_line(path: Path, lineno: int, raw: bytes) -> str:
    """One JSONL line as text; invalid UTF-8 is an error naming line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = _jsonl_column(raw)
        column = f"{describe(where)}: " if where else ""
        raise SpecError(
            f"{path}:{lineno}: {column}not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
            f"byte {exc.start + 1} of the line)"
        ) from None


def _jsonl_column(raw: bytes) -> str | None:
    import json

    try:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
    except ValueError:
        return None
    return first_invalid(obj)


def check_object(path: Path, lineno: int, raw: bytes, obj: Any) -> None:
    """A parsed JSONL line holding a lone surrogate escape is an error naming it."""
    if SURROGATE_ESCAPE.search(raw) is None:
        return
    where = first_invalid(obj)
    if where is not None:
        raise SpecError(
            f"{path}:{lineno}: {describe(where)}: a JSON escape of a lone surrogate "
            "(\\ud800-\\udfff without its pair) is not valid Unicode"
        )


def check_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Raise a ``SpecError`` naming the first invalid value, if any."""
    import pyarrow as pa

    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise SpecError(f"{path}: a column name is not valid UTF-8") from None
    for name in names:
        column = table.column(name)
        if fmt == "csv" and (
            pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
        ):
            raise SpecError(_csv_location(path, name))  # Arrow's sign of non-UTF-8 CSV bytes
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            if fmt == "jsonl":
                _rescan_jsonl(path)
            if fmt == "csv":
                raise SpecError(_csv_location(path, name)) from None
            row = _first_invalid_row(column)
            raise SpecError(
                f"{path}: row index {row}, column '{name}': not valid UTF-8 text"
            ) from None


def _rescan_jsonl(path: Path) -> None:
    """Read the file line by line, checking each as ``json_objects`` does; raises at
    the first bad line (returns only if none is found)."""
    import json

    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            text = decode_line(path, lineno, raw)
            if SURROGATE_ESCAPE.search(raw) is not None and text.strip():
                try:
                    check_object(path, lineno, raw, json.loads(text))
                except ValueError:
                    continue


def _csv_location(path: Path, column: str) -> str:
    """``file:line: column 'c': ...`` for the first CSV line that is not UTF-8."""
    with open(path, "rb") as fh:
        header: list[str] = []
        for lineno, raw in enumerate(fh, 1):
            text = raw.decode("utf-8", "surrogateescape")
            fields = next(csv.reader([text]), [])
            if lineno == 1:
                header = fields
            try:
                raw.decode("utf-8")
                continue
            except UnicodeDecodeError as exc:
                bad = next((i for i, f in enumerate(fields) if not valid_text(f)), None)
                name = header[bad] if bad is not None and bad < len(header) else column
                what = "the header" if lineno == 1 else f"column '{name}'"
                return (
                    f"{path}:{lineno}: {what}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} "
                    f"at byte {exc.start + 1} of the line)"
                )
    return f"{path}: column '{column}': not valid UTF-8 text"


def _first_invalid_row(column: pa.ChunkedArray, block: int = 4096) -> int:
    """Index of the first row whose value does not convert to Python text (blocks of
    rows, then row by row inside the bad block; only ever run on a column known bad)."""
    start = 0
    for chunk in column.chunks:
        for offset in range(0, len(chunk), block):
            part = chunk.slice(offset, block)
            try:
                part.to_pylist()
                continue
            except UnicodeDecodeError:
                pass
            for i in range(len(part)):
                try:
                    part.slice(i, 1).to_pylist()
                except UnicodeDecodeError:
                    return start + offset + i
        start += len(chunk)
    return start
