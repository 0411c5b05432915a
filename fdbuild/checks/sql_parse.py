"""The ``sql_parse`` gate and the sqlglot-based SQL analysis other checks share.

FastDistill had no parse gate: broken SQL was only noticed when SQLite refused it. This
check parses with sqlglot in the target dialect (no database needed, so it is cheap and
runs before execution) and reports:

* ``parse_ok``: sqlglot read every statement as a statement it understands (a bare
  expression such as prose ``hello world`` or an unparsed ``Command`` fallback is not);
* ``sql_normalized``: the canonical rendering (keyword case, spacing, identifier case
  folded where the dialect folds it), also used by ``dedup`` in ``normalized_sql`` mode;
* ``sql_parse_error``: ``empty`` for empty text, else sqlglot's message with its position;
* ``read_only``: exactly one statement, and it is a query (``SELECT``, ``WITH ... SELECT``,
  ``UNION``/``INTERSECT``/``EXCEPT``, ``VALUES``) containing no write or DDL node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlglot
from pydantic import Field
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from fdbuild.checks.base import Check, CheckParams

_QUERIES = (exp.Query, exp.Values)
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
)
_UNSAFE_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]+, text: (.*?), line: [^>]*>")


def parse_statements(sql: str, dialect: str) -> list[exp.Expr]:
    """Every statement sqlglot reads in ``sql`` (empty ones dropped); raises on error."""
    return [tree for tree in sqlglot.parse(sql, read=dialect) if tree is not None]


def is_read_only(trees: Sequence[exp.Expr]) -> bool:
    """Exactly one query, with no write/DDL node and no unsafe function inside it."""
    if len(trees) != 1 or not isinstance(trees[0], _QUERIES):
        return False
    tree = trees[0]
    if tree.find(*_WRITES) is not None:
        return False
    names = {fn.name.lower() for fn in tree.find_all(exp.Anonymous)}
    return not names & _UNSAFE_FUNCTIONS


def normalize_sql(sql: str, dialect: str = "sqlite") -> str | None:
    """Canonical text of ``sql`` (statements joined by ``"; "``), or None if unparsable."""
    try:
        trees = parse_statements(sql, dialect)
        return "; ".join(normalize_identifiers(t, dialect=dialect).sql(dialect) for t in trees)
    except Exception:  # noqa: BLE001 - sqlglot raises several error types
        return None


def has_top_level_order_by(sql: str, dialect: str = "sqlite") -> bool:
    """Whether the query's own result is ordered (an ORDER BY outside any subquery).

    Falls back to a lexical scan at parenthesis depth 0 when sqlglot cannot parse.
    """
    try:
        trees = parse_statements(sql, dialect)
    except Exception:  # noqa: BLE001
        return _order_by_at_depth_zero(sql)
    if len(trees) != 1:
        return False
    tree = trees[0]
    while isinstance(tree, exp.Subquery) and not tree.args.get("order"):
        tree = tree.this
    return bool(tree.args.get("order"))


def _order_by_at_depth_zero(sql: str) -> bool:
    """ORDER BY outside parentheses, string literals and comments."""
    text = re.sub(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    depth, outer = 0, []
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        outer.append(ch if depth == 0 else " ")
    return re.search(r"\border\s+by\b", "".join(outer), re.I) is not None


class SqlParseParams(CheckParams):
    field: str = Field("sql", description="Column holding the SQL text.")
    dialect: str = Field("sqlite", description="sqlglot dialect to parse with.")


class SqlParseCheck(Check[SqlParseParams]):
    """Annotates parse_ok, sql_normalized, sql_parse_error and read_only."""

    name = "sql_parse"
    version = "1"
    Params = SqlParseParams
    outputs = {
        "parse_ok": "bool",
        "sql_normalized": "string",
        "sql_parse_error": "string",
        "read_only": "bool",
    }

    def reads(self) -> Sequence[str]:
        return [self.params.field]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        value = row.get(self.params.field)
        sql = "" if value is None else str(value)
        failed = {"parse_ok": False, "sql_normalized": None, "read_only": False}
        if not sql.strip():
            return {**failed, "sql_parse_error": "empty"}
        try:
            trees = parse_statements(sql, self.params.dialect)
        except Exception as exc:  # noqa: BLE001 - sqlglot raises several error types
            return {**failed, "sql_parse_error": _describe(exc)}
        problem = _not_a_statement(trees)
        if problem:
            return {**failed, "sql_parse_error": problem}
        return {
            "parse_ok": True,
            "sql_normalized": normalize_sql(sql, self.params.dialect),
            "sql_parse_error": None,
            "read_only": is_read_only(trees),
        }


def _not_a_statement(trees: Sequence[exp.Expr]) -> str | None:
    """Why parsed text is not SQL statements (prose parsed as an alias, say), or None."""
    if not trees:
        return "empty"
    for tree in trees:
        if isinstance(tree, exp.Command):
            return f"unsupported statement: {tree.sql()[:80]}"
        if not isinstance(tree, (*_QUERIES, *_WRITES)):
            return f"not a statement: parsed as {type(tree).__name__}"
    return None


def _describe(exc: Exception) -> str:
    """sqlglot's first error, without its ANSI highlighting, with line and column."""
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        description = _TOKEN_REPR.sub(r"'\1'", str(first.get("description")))
        return f"{description} (line {first.get('line')}, col {first.get('col')})"
    return (
        re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    )
