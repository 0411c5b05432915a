"""Gold SQL for WikiSQL questions: the table model, schema text, typed literals, the query.

See ``fdbuild.importers.wikisql`` for the decisions; this module applies three of them:

* **Schema text is real SQLite DDL with the db's own column names**; headers go in
  ``--`` comments, so the teacher can map words to columns while gold and teacher both
  use ``colN``.
* **Lower-case literals are stated, not hidden**: a table whose text cells are all lower
  case gets lower-cased literals, and its schema text says so.
* **Literals are typed by the db column** (numeric affinity -> number, else quoted
  text), numbers are parsed the way the official evaluator does, and every condition
  keeps its own value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


class Skip(Exception):
    """A question that cannot become a runnable gold query; ``reason`` is a SKIP_REASONS code."""

    def __init__(self, reason: str) -> None:
        assert reason in SKIP_REASONS, reason
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Column:
    name: str
    decl_type: str
    numeric: bool


@dataclass(frozen=True)
class Table:
    """One db table as the importer sees it: columns, casing and the schema text."""

    sql_name: str
    columns: tuple[Column, ...]
    lowercase: bool
    schema: str


# --------------------------------------------------------------------------- schema


def quote_ident(name: str) -> str:
    """Leave plain identifiers bare (as the release's are) and double-quote the rest."""
    if _IDENT_RE.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def is_numeric_type(decl_type: str) -> bool:
    """SQLite's column-affinity rules: INTEGER, REAL and NUMERIC affinity compare as numbers."""
    upper = decl_type.upper()
    if "INT" in upper:
        return True
    if any(token in upper for token in ("CHAR", "CLOB", "TEXT")):
        return False
    if not upper or "BLOB" in upper:
        return False
    return True


def is_text_type(decl_type: str) -> bool:
    upper = decl_type.upper()
    return "INT" not in upper and any(t in upper for t in ("CHAR", "CLOB", "TEXT"))


def _header_comment(header: str) -> str:
    """A header on one line, so it can sit in a ``--`` comment without ending it."""
    return " ".join(header.split()) or "(no header)"


def format_schema(
    sql_name: str, columns: Sequence[Column], headers: Sequence[str], lowercase: bool
) -> str:
    """The CREATE TABLE text the teacher sees: db column names, headers as comments."""
    lines = [f"CREATE TABLE {quote_ident(sql_name)} ("]
    for i, (column, header) in enumerate(zip(columns, headers, strict=True)):
        comma = "," if i < len(columns) - 1 else ""
        decl = f" {column.decl_type}" if column.decl_type else ""
        lines.append(f"  {quote_ident(column.name)}{decl}{comma} -- {_header_comment(header)}")
    lines.append(");")
    if lowercase:
        lines.append("-- All text values in this table are lower case.")
    return "\n".join(lines)


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


def _literal(value: Any, column: Column, lowercase: bool) -> str:
    """One condition value as a SQL literal typed by its db column."""
    if value is None or isinstance(value, bool):
        raise Skip("bad_literal")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise Skip("bad_literal")
        number = str(value) if isinstance(value, int) else _format_number(value)
        return number if column.numeric else "'" + number + "'"
    if not isinstance(value, str):
        raise Skip("bad_literal")
    if column.numeric:
        parsed = _parse_number(value)
        if parsed is None:
            raise Skip("bad_literal")
        return _format_number(parsed)
    text = value.lower() if lowercase else value
    return "'" + text.replace("'", "''") + "'"


def build_gold_sql(table: Table, sel: int, agg: int, conds: Sequence[Sequence[Any]]) -> str:
    """FastDistill's shape (``SELECT AGG(colN) FROM t WHERE colI op lit AND ...``), typed by the db."""
    columns = table.columns
    if not 0 <= sel < len(columns):
        raise Skip("bad_column")
    if not 0 <= agg < len(AGG_OPS):
        raise Skip("unknown_agg")
    target = quote_ident(columns[sel].name)
    select = f"{AGG_OPS[agg]}({target})" if AGG_OPS[agg] else target
    where: list[str] = []
    for col, op, value in conds:
        if not 0 <= col < len(columns):
            raise Skip("bad_column")
        if not 0 <= op < len(COND_OPS):
            raise Skip("unknown_op")
        if op not in SUPPORTED_OPS:
            raise Skip("unsupported_op")
        literal = _literal(value, columns[col], table.lowercase)
        where.append(f"{quote_ident(columns[col].name)} {COND_OPS[op]} {literal}")
    sql = f"SELECT {select} FROM {quote_ident(table.sql_name)}"
    return sql + (" WHERE " + " AND ".join(where) if where else "")
