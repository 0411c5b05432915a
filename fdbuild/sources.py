"""Reading source files (.jsonl, .parquet, .csv) and dataset folders (``format: hf``,
``sources_hf.py``) into Arrow, and peeking at their columns.

Every value read must be valid Unicode (``source_text.py``): a bad byte or a lone
surrogate is an error naming the file, the line (row index for Parquet) and the column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.errors import SpecError
from fdbuild.source_text import check_object, check_table, decode_line, valid_text

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}


def source_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    if path.is_dir():
        return "hf"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SpecError(
            f"{path}: unknown source format '{path.suffix}'; use .jsonl, .parquet or .csv or set 'format:'"
        )
    return fmt


def peek_columns(
    path: Path, fmt: str, max_lines: int = 1000, split: str | None = None
) -> list[str]:
    """Column names, cheaply: the Parquet or Arrow schema, the CSV header, or the keys of
    the first ``max_lines`` JSONL rows (in first-seen order)."""
    if fmt == "hf":
        from fdbuild.sources_hf import hf_columns, hf_files

        return hf_columns(hf_files(path, split))
    if path.is_dir():
        raise SpecError(f"{path}: a folder; a dataset folder needs 'format: hf'")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if fmt == "csv":
        import csv

        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
            header = next(csv.reader(fh), [])
        if not all(valid_text(name) for name in header):
            raise SpecError(f"{path}:1: the header is not valid UTF-8")
        return header
    seen: dict[str, None] = {}
    for _, obj in json_objects(path, max_lines):
        for key in obj:
            seen.setdefault(key, None)
    return list(seen)


def json_objects(path: Path, max_lines: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank JSONL line; a bad line (invalid JSON, not
    UTF-8, a lone surrogate escape, not an object) is an error naming it."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if max_lines is not None and lineno > max_lines:
                break
            line = decode_line(path, lineno, raw)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise SpecError(f"{path}:{lineno}: each line must be a JSON object")
            check_object(path, lineno, raw, obj)
            yield lineno, obj


def read_source(path: Path, fmt: str, split: str | None = None) -> pa.Table:
    """The whole source as an Arrow table of valid text. Errors name the file (and line
    for JSONL and CSV text, row index for Parquet)."""
    if fmt == "hf":
        from fdbuild.sources_hf import hf_files, read_hf

        return read_hf(hf_files(path, split))
    if fmt == "csv":
        peek_columns(path, fmt)  # a header that is not UTF-8 is an error naming line 1
    table = _read(path, fmt)
    check_table(table, path, fmt)
    return table


def _read(path: Path, fmt: str) -> pa.Table:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if fmt == "csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(path)
        import pyarrow.json as pjson

        return pjson.read_json(path, read_options=pjson.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, OSError) as exc:
        if fmt == "jsonl":
            return _read_jsonl_slow(path)
        raise SpecError(f"{path}: cannot read {fmt} source: {exc}") from None


def _read_jsonl_slow(path: Path) -> pa.Table:
    """Line-by-line JSONL for what Arrow's reader refuses (a bad line, or values of mixed
    types such as WikiSQL's ``conds: [[0, 0, "Kenya"]]``). Bad lines are errors naming the
    line; a column whose values share no Arrow type is kept as JSON text."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    count = 0
    for _, obj in json_objects(path):
        for key in obj:
            if key not in columns:
                columns[key] = [None] * count
        for key, values in columns.items():
            values.append(obj.get(key))
        count += 1
    arrays = {}
    for key, values in columns.items():
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            arrays[key] = pa.array(
                [
                    None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
                    for v in values
                ],
                pa.string(),
            )
    return pa.table(arrays)
