"""Import the official WikiSQL release as a Text2SQL source: questions JSONL plus its db.

The release has three files per split: ``<split>.jsonl`` (questions with a structured
query ``{"sel", "agg", "conds"}``), ``<split>.tables.jsonl`` (readable headers and rows)
and ``<split>.db`` (SQLite; table ``table_<id, '-' -> '_'>``, columns ``col0..colN``).
This module writes ``<out>/<split>.jsonl`` (one question per line, with a ``gold_sql``
that runs on the db) and ``<out>/<split>.db`` (a byte copy of the release db).

Decisions, and how they differ from FastDistill's ``prepare_wikisql_1k.py``:

* **Schema text is real SQLite DDL with the db's own column names** (``col0 TEXT, --
  Player``): the db cannot be queried by header, and renaming its columns would make the
  copy differ from the release. FastDistill's ``t(col0:text [Player])`` is not SQL, so the
  teacher had to guess the dialect. Headers go in ``--`` comments, so the teacher can map
  words to columns while gold and teacher both use ``colN``.
* **Lower-case literals are stated, not hidden.** The official evaluator lower-cases every
  string condition because the db's text cells are lower case. The importer checks that
  per table: when every text cell is lower case it lower-cases literals and the schema
  text says so; otherwise it keeps the literal as written. FastDistill lower-cased
  silently, so correct teacher SQL with the question's casing matched nothing.
* **Literals are typed by the db column** (numeric affinity -> number, else quoted
  text), numbers are parsed the way the official evaluator does (thousands separators,
  else the first number in the text), and every condition keeps its own value (the
  official evaluator binds by column name, so two conditions on one column collide).
* **Every gold query is executed** on the copied db before it is written; failures are
  skipped and counted, never written.
* **Sampling is streaming and nested**: each usable question gets the priority
  ``blake2b(seed, line index)`` and the ``limit`` lowest are kept, written in file order.
  The same seed gives the same bytes; a larger ``limit`` with the same seed keeps every
  row of a smaller one. ``task_id`` is ``wikisql-<split>-<0-based line index, 6 digits>``,
  so it names the source line, not a position in the sample.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdbuild.errors import FdbuildError, SpecError

AGG_OPS: tuple[str, ...] = ("", "MAX", "MIN", "COUNT", "SUM", "AVG")
COND_OPS: tuple[str, ...] = ("=", ">", "<", "OP")
SUPPORTED_OPS: frozenset[int] = frozenset({0, 1, 2})

# Skip reasons, reported as counts. A row with one of these is data the release cannot
# turn into a runnable gold query; it is not an error in the release's format.
SKIP_REASONS: tuple[str, ...] = (
    "empty_question",
    "unknown_table",
    "table_not_in_db",
    "schema_mismatch",
    "bad_column",
    "unknown_agg",
    "unsupported_op",
    "unknown_op",
    "bad_literal",
    "gold_exec_error",
)

_SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
# A gold query may run at most this many SQLite VM steps (in units of _STEP_UNIT). WikiSQL
# tables are tiny; the budget only stops a pathological db from hanging the import, and a
# step count (unlike a clock) makes the outcome the same on every machine.
_STEP_UNIT = 1000
_STEP_BUDGET = 100_000


@dataclass(frozen=True)
class ImportReport:
    """What an import did; the CLI prints it, tests assert on it.

    ``skipped`` counts rows of the whole split that could not become a runnable gold
    query, by reason. ``usable`` rows are the population the sample is drawn from.
    ``empty_gold_results`` counts written rows whose gold query returns nothing (or only
    NULL): still valid SQL, but worth knowing about when a teacher is scored on them.
    """

    split: str
    seed: int
    limit: int | None
    questions_read: int
    usable: int
    rows_written: int
    skipped: dict[str, int]
    empty_gold_results: int
    jsonl_path: Path
    db_path: Path


class _Skip(Exception):
    """A question that cannot become a runnable gold query; ``reason`` is a SKIP_REASONS code."""

    def __init__(self, reason: str) -> None:
        assert reason in SKIP_REASONS, reason
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Column:
    name: str
    decl_type: str
    numeric: bool


@dataclass(frozen=True)
class _Table:
    """One db table as the importer sees it: columns, casing and the schema text."""

    sql_name: str
    columns: tuple[_Column, ...]
    lowercase: bool
    schema: str


# --------------------------------------------------------------------------- reading


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _load_headers(path: Path) -> dict[str, list[str]]:
    """Map table id -> header from ``<split>.tables.jsonl``; rows are not kept."""
    headers: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path):
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
class _Question:
    index: int
    table_id: str
    question: str
    sel: int
    agg: int
    conds: list[list[Any]]


def _parse_question(path: Path, lineno: int, obj: Mapping[str, Any]) -> _Question:
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
    return _Question(lineno - 1, table_id, question, sql["sel"], sql["agg"], conds)


# --------------------------------------------------------------------------- the db


def sqlite_table_name(table_id: str) -> str:
    """The release's db table name for a table id (``1-1000181-1`` -> ``table_1_1000181_1``)."""
    return "table_" + table_id.replace("-", "_")


def _quote_ident(name: str) -> str:
    """Leave plain identifiers bare (as the release's are) and double-quote the rest."""
    if _IDENT_RE.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _is_numeric_type(decl_type: str) -> bool:
    """SQLite's column-affinity rules: INTEGER, REAL and NUMERIC affinity compare as numbers."""
    upper = decl_type.upper()
    if "INT" in upper:
        return True
    if any(token in upper for token in ("CHAR", "CLOB", "TEXT")):
        return False
    if not upper or "BLOB" in upper:
        return False
    return True


def _is_text_type(decl_type: str) -> bool:
    upper = decl_type.upper()
    return "INT" not in upper and any(t in upper for t in ("CHAR", "CLOB", "TEXT"))


def _header_comment(header: str) -> str:
    """A header on one line, so it can sit in a ``--`` comment without ending it."""
    return " ".join(header.split()) or "(no header)"


def format_schema(
    sql_name: str, columns: Sequence[_Column], headers: Sequence[str], lowercase: bool
) -> str:
    """The CREATE TABLE text the teacher sees: db column names, headers as comments."""
    lines = [f"CREATE TABLE {_quote_ident(sql_name)} ("]
    for i, (column, header) in enumerate(zip(columns, headers, strict=True)):
        comma = "," if i < len(columns) - 1 else ""
        decl = f" {column.decl_type}" if column.decl_type else ""
        lines.append(f"  {_quote_ident(column.name)}{decl}{comma} -- {_header_comment(header)}")
    lines.append(");")
    if lowercase:
        lines.append("-- All text values in this table are lower case.")
    return "\n".join(lines)


class _Database:
    """Read-only access to the copied db: table lookup (cached) and gold verification."""

    def __init__(self, path: Path, shown_as: Path) -> None:
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        self._tables: dict[str, _Table | str] = {}
        self._steps = 0
        self._conn.set_progress_handler(self._tick, _STEP_UNIT)
        try:
            # One read of the catalogue: a lookup per table would scan it every time.
            names = self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpecError(f"{shown_as}: not a readable SQLite database ({exc})") from None
        # SQLite identifiers are case-insensitive (ASCII), so look them up that way.
        self._names = {name.lower(): name for (name,) in names}

    def close(self) -> None:
        self._conn.close()

    def _tick(self) -> int:
        self._steps += 1
        return 1 if self._steps > _STEP_BUDGET else 0

    def table(self, table_id: str, headers: Sequence[str]) -> _Table:
        """The db table for a WikiSQL table id, or _Skip with why it cannot be used."""
        cached = self._tables.get(table_id)
        if cached is None:
            try:
                cached = self._inspect(sqlite_table_name(table_id), headers)
            except _Skip as skip:
                cached = skip.reason
            self._tables[table_id] = cached
        if isinstance(cached, str):
            raise _Skip(cached)
        return cached

    def _inspect(self, wanted: str, headers: Sequence[str]) -> _Table:
        self._steps = 0
        sql_name = self._names.get(wanted.lower())
        if sql_name is None:
            raise _Skip("table_not_in_db")
        try:
            info = self._conn.execute(f"PRAGMA table_info({_quote_ident(sql_name)})").fetchall()
        except sqlite3.Error:
            raise _Skip("schema_mismatch") from None
        columns = tuple(_Column(r[1], r[2] or "", _is_numeric_type(r[2] or "")) for r in info)
        if len(columns) != len(headers):
            raise _Skip("schema_mismatch")
        lowercase = self._text_is_lowercase(sql_name, columns)
        return _Table(
            sql_name, columns, lowercase, format_schema(sql_name, columns, headers, lowercase)
        )

    def _text_is_lowercase(self, sql_name: str, columns: Sequence[_Column]) -> bool:
        """True when the table has text columns and every text cell is lower case."""
        text_columns = [_quote_ident(c.name) for c in columns if _is_text_type(c.decl_type)]
        if not text_columns:
            return False
        query = f"SELECT {', '.join(text_columns)} FROM {_quote_ident(sql_name)}"
        self._steps = 0
        try:
            for row in self._conn.execute(query):
                if any(isinstance(v, str) and v != v.lower() for v in row):
                    return False
        except sqlite3.Error:
            return False
        return True

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        """Execute a gold query within the step budget; any failure is a _Skip."""
        self._steps = 0
        try:
            return self._conn.execute(sql).fetchall()
        except (sqlite3.Error, ValueError, OverflowError):
            raise _Skip("gold_exec_error") from None


# --------------------------------------------------------------------------- gold SQL


def _format_number(value: float) -> str:
    """A SQL number literal: integral values without a fraction, others as repr."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _parse_number(text: str) -> float | None:
    """The official evaluator's reading of a number: '1,234.5' -> 1234.5, else the first number."""
    cleaned = text.strip().replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        match = _NUMBER_RE.search(text)
        if match is None:
            return None
        value = float(match.group(0))
    return value if math.isfinite(value) else None


def _literal(value: Any, column: _Column, lowercase: bool) -> str:
    """One condition value as a SQL literal typed by its db column."""
    if value is None or isinstance(value, bool):
        raise _Skip("bad_literal")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Skip("bad_literal")
        number = str(value) if isinstance(value, int) else _format_number(value)
        return number if column.numeric else "'" + number + "'"
    if not isinstance(value, str):
        raise _Skip("bad_literal")
    if column.numeric:
        parsed = _parse_number(value)
        if parsed is None:
            raise _Skip("bad_literal")
        return _format_number(parsed)
    text = value.lower() if lowercase else value
    return "'" + text.replace("'", "''") + "'"


def build_gold_sql(table: _Table, sel: int, agg: int, conds: Sequence[Sequence[Any]]) -> str:
    """FastDistill's shape (``SELECT AGG(colN) FROM t WHERE colI op lit AND ...``), typed by the db."""
    columns = table.columns
    if not 0 <= sel < len(columns):
        raise _Skip("bad_column")
    if not 0 <= agg < len(AGG_OPS):
        raise _Skip("unknown_agg")
    target = _quote_ident(columns[sel].name)
    select = f"{AGG_OPS[agg]}({target})" if AGG_OPS[agg] else target
    where: list[str] = []
    for col, op, value in conds:
        if not 0 <= col < len(columns):
            raise _Skip("bad_column")
        if not 0 <= op < len(COND_OPS):
            raise _Skip("unknown_op")
        if op not in SUPPORTED_OPS:
            raise _Skip("unsupported_op")
        literal = _literal(value, columns[col], table.lowercase)
        where.append(f"{_quote_ident(columns[col].name)} {COND_OPS[op]} {literal}")
    sql = f"SELECT {select} FROM {_quote_ident(table.sql_name)}"
    return sql + (" WHERE " + " AND ".join(where) if where else "")


# --------------------------------------------------------------------------- import


def _priority(seed: int, index: int) -> int:
    """A per-line sampling key that depends only on (seed, line): streaming and portable."""
    digest = hashlib.blake2b(f"{seed}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _check_args(src: Path, split: str, limit: int | None, out: Path) -> dict[str, Path]:
    """Validate arguments and return the three release files; nothing is written yet."""
    if not _SPLIT_RE.match(split):
        raise SpecError(f"--split: {split!r} is not a plain split name (e.g. train, dev, test)")
    if limit is not None and limit < 1:
        raise SpecError(f"--limit: must be a positive integer, got {limit}")
    if not src.is_dir():
        raise SpecError(f"--src: {src} is not a directory")
    files = {
        "questions": src / f"{split}.jsonl",
        "tables": src / f"{split}.tables.jsonl",
        "db": src / f"{split}.db",
    }
    for path in files.values():
        if not path.is_file():
            raise SpecError(
                f"{path}: missing; a WikiSQL release has {split}.jsonl, "
                f"{split}.tables.jsonl and {split}.db in --src"
            )
    if out.exists() and out.resolve() == src.resolve():
        raise SpecError(f"--out: {out} is the --src folder; the import would overwrite its input")
    return files


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 would stick)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_path(out: Path, name: str) -> Path:
    """An empty temp file next to its destination, so os.replace into place is atomic."""
    handle, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(tmp, _file_mode())
    return Path(tmp)


def _copy_db(source: Path, out: Path, name: str) -> Path:
    """Copy the db next to its destination (same filesystem) so os.replace is atomic."""
    tmp = _temp_path(out, name)
    with source.open("rb") as src_handle, tmp.open("wb") as dst_handle:
        shutil.copyfileobj(src_handle, dst_handle, length=1 << 20)
        dst_handle.flush()
        os.fsync(dst_handle.fileno())
    return tmp


def _dump_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def _write_jsonl(records: Sequence[Mapping[str, Any]], out: Path, name: str) -> Path:
    tmp = _temp_path(out, name)
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(_dump_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _record(split: str, q: _Question, table: _Table, gold: str) -> dict[str, Any]:
    return {
        "task_id": f"wikisql-{split}-{q.index:06d}",
        "question": q.question,
        "schema": table.schema,
        "table_id": q.table_id,
        "table": table.sql_name,
        "gold_sql": gold,
        "structured_query": {"sel": q.sel, "agg": q.agg, "conds": q.conds},
    }


def _is_empty(rows: Sequence[tuple[Any, ...]]) -> bool:
    return all(value is None for row in rows for value in row)


@dataclass
class _Sampler:
    """Keeps the ``limit`` lowest-priority usable rows (all of them when limit is None)."""

    seed: int
    limit: int | None
    heap: list[tuple[int, int, dict[str, Any], bool]] = field(default_factory=list)

    def offer(self, index: int, record: dict[str, Any], empty: bool) -> None:
        item = (-_priority(self.seed, index), -index, record, empty)
        if self.limit is None or len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
        elif item > self.heap[0]:
            heapq.heapreplace(self.heap, item)

    def chosen(self) -> list[tuple[dict[str, Any], bool]]:
        """The kept rows in file order."""
        return [(rec, empty) for _, _, rec, empty in sorted(self.heap, key=lambda it: -it[1])]


def _scan(
    files: Mapping[str, Path], db: _Database, split: str, sampler: _Sampler
) -> tuple[int, Counter[str]]:
    """Read every question, build and verify its gold query, offer usable ones to the sampler."""
    headers = _load_headers(files["tables"])
    skipped: Counter[str] = Counter()
    read = 0
    path = files["questions"]
    for lineno, obj in _read_jsonl(path):
        read += 1
        q = _parse_question(path, lineno, obj)
        try:
            if not q.question.strip():
                raise _Skip("empty_question")
            if q.table_id not in headers:
                raise _Skip("unknown_table")
            table = db.table(q.table_id, headers[q.table_id])
            gold = build_gold_sql(table, q.sel, q.agg, q.conds)
            rows = db.run(gold)
        except _Skip as skip:
            skipped[skip.reason] += 1
            continue
        sampler.offer(q.index, _record(split, q, table, gold), _is_empty(rows))
    return read, skipped


def import_wikisql(src: Path, split: str, limit: int | None, seed: int, out: Path) -> ImportReport:
    """Import one split of a WikiSQL release into ``out/<split>.jsonl`` and ``out/<split>.db``.

    Both outputs appear together or not at all: they are written to temp files in ``out``
    and moved into place with ``os.replace`` only after every row has been verified.
    Raises SpecError (naming file, line and key) for missing files or malformed lines.
    """
    src, out = Path(src), Path(out)
    files = _check_args(src, split, limit, out)
    out.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        tmp_db = _copy_db(files["db"], out, f"{split}.db")
        temps.append(tmp_db)
        db = _Database(tmp_db, shown_as=files["db"])
        sampler = _Sampler(seed, limit)
        try:
            read, skipped = _scan(files, db, split, sampler)
        finally:
            db.close()
        chosen = sampler.chosen()
        tmp_jsonl = _write_jsonl([rec for rec, _ in chosen], out, f"{split}.jsonl")
        temps.append(tmp_jsonl)
        db_path, jsonl_path = out / f"{split}.db", out / f"{split}.jsonl"
        os.replace(tmp_db, db_path)
        os.replace(tmp_jsonl, jsonl_path)
        temps.clear()
    except OSError as exc:
        raise FdbuildError(f"{exc.filename or out}: cannot import WikiSQL: {exc.strerror}") from exc
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return ImportReport(
        split=split,
        seed=seed,
        limit=limit,
        questions_read=read,
        usable=read - sum(skipped.values()),
        rows_written=len(chosen),
        skipped={reason: skipped[reason] for reason in sorted(skipped)},
        empty_gold_results=sum(1 for _, empty in chosen if empty),
        jsonl_path=jsonl_path,
        db_path=db_path,
    )


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
    tmp = _temp_path(folder, f"{split}.db")
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
    name = _quote_ident(sqlite_table_name(table["id"]))
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
