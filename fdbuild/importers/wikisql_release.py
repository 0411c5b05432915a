"""The official WikiSQL release layout: read it strictly, and write it for hand-made sets.

A split is three files: ``<split>.jsonl`` (questions with a structured query ``{"sel",
"agg", "conds"}``), ``<split>.tables.jsonl`` (readable headers and rows) and
``<split>.db`` (SQLite; table ``table_<id, '-' -> '_'>``, columns ``col0..colN``).

Reading streams line by line and fails with a SpecError naming file, line and key when a
line does not have the release's shape: a wrong shape is an error in the input, unlike a
well-formed question that cannot become gold SQL (that is skipped and counted).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.importers.wikisql_atomic import temp_path
from fdbuild.importers.wikisql_gold import quote_ident


def sqlite_table_name(table_id: str) -> str:
    """The release's db table name for a table id (``1-1000181-1`` -> ``table_1_1000181_1``)."""
    return "table_" + table_id.replace("-", "_")


# --------------------------------------------------------------------------- reading


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line, streaming.

    Decoding is per line so that a bad byte or bad JSON names its line.
    """
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError(f"{path}:{lineno}: not UTF-8 ({exc.reason})") from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{path}:{lineno}: malformed JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise SpecError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(path: Path, lineno: int, obj: Mapping[str, Any], key: str, kind: type) -> Any:
    """Return ``obj[key]`` if it has the type the WikiSQL format promises, else fail."""
    if key not in obj:
        raise SpecError(f"{path}:{lineno}: missing key '{key}'")
    value = obj[key]
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise SpecError(
            f"{path}:{lineno}: key '{key}' must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def load_headers(path: Path) -> dict[str, list[str]]:
    """Map table id -> header from ``<split>.tables.jsonl``; rows are not kept."""
    headers: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path):
        table_id = _require(path, lineno, obj, "id", str)
        header = _require(path, lineno, obj, "header", list)
        if not all(isinstance(h, str) for h in header):
            raise SpecError(f"{path}:{lineno}: key 'header' must be a list of strings")
        if table_id in headers:
            raise SpecError(
                f"{path}:{lineno}: key 'id': table {table_id!r} already defined "
                f"on line {first_line[table_id]}"
            )
        headers[table_id] = header
        first_line[table_id] = lineno
    return headers


@dataclass(frozen=True)
class Question:
    index: int
    table_id: str
    question: str
    sel: int
    agg: int
    conds: list[list[Any]]


def parse_question(path: Path, lineno: int, obj: Mapping[str, Any]) -> Question:
    """Check one question line has the release's shape; a wrong shape is an error."""
    table_id = _require(path, lineno, obj, "table_id", str)
    question = _require(path, lineno, obj, "question", str)
    sql = _require(path, lineno, obj, "sql", dict)
    where = f"{path}:{lineno}: key 'sql."
    for key in ("sel", "agg"):
        if not _is_int(sql.get(key)):
            raise SpecError(f"{where}{key}' must be an integer, got {sql.get(key)!r}")
    conds = sql.get("conds", [])
    if not isinstance(conds, list):
        raise SpecError(f"{where}conds' must be a list")
    for i, cond in enumerate(conds):
        if not (
            isinstance(cond, list) and len(cond) == 3 and _is_int(cond[0]) and _is_int(cond[1])
        ):
            raise SpecError(
                f"{where}conds[{i}]' must be [column index, operator index, value], got {cond!r}"
            )
    return Question(lineno - 1, table_id, question, sql["sel"], sql["agg"], conds)


# --------------------------------------------------------------------------- writing


def write_release(
    folder: Path,
    split: str,
    tables: Sequence[Mapping[str, Any]],
    questions: Sequence[Mapping[str, Any]],
) -> None:
    """Write hand-made tables and questions in the official WikiSQL layout.

    This is how the project makes small Text2SQL sets (``examples/wikisql_mini``) that
    then go through the same importer as the real release. Like the release, the db
    keeps text cells lower case, stores ``real`` columns as REAL and names columns colN.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_lines(folder / f"{split}.tables.jsonl", tables)
    _write_lines(folder / f"{split}.jsonl", questions)
    db_path = folder / f"{split}.db"
    tmp = temp_path(folder, f"{split}.db")
    try:
        conn = sqlite3.connect(tmp)
        try:
            for table in tables:
                _create_release_table(conn, table)
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, db_path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_lines(path: Path, objects: Sequence[Mapping[str, Any]]) -> None:
    text = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)
    path.write_text(text, encoding="utf-8")


def _create_release_table(conn: sqlite3.Connection, table: Mapping[str, Any]) -> None:
    """One table as the release stores it: ``table_<id>(col0 TEXT, col1 REAL, ...)``."""
    types = [str(t).lower() for t in table["types"]]
    if len(types) != len(table["header"]):
        raise SpecError(f"table {table['id']!r}: 'types' and 'header' differ in length")
    decl = ", ".join(f"col{i} {'REAL' if t == 'real' else 'TEXT'}" for i, t in enumerate(types))
    name = quote_ident(sqlite_table_name(table["id"]))
    conn.execute(f"CREATE TABLE {name} ({decl})")
    marks = ", ".join("?" for _ in types)
    for row in table["rows"]:
        if len(row) != len(types):
            raise SpecError(
                f"table {table['id']!r}: row {row!r} has {len(row)} cells, not {len(types)}"
            )
        cells = [_release_cell(v, t) for v, t in zip(row, types, strict=True)]
        conn.execute(f"INSERT INTO {name} VALUES ({marks})", cells)


def _release_cell(value: Any, type_: str) -> Any:
    if type_ == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"real cell {value!r} is not a number")
        return float(value)
    return str(value).lower()
