"""SqlParseCheck and the shared sqlglot helpers (normalize_sql, has_top_level_order_by)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fdbuild.checks import get_check_class
from fdbuild.checks.sql_parse import SqlParseCheck, has_top_level_order_by, normalize_sql


def evaluate(sql: object, **params: object) -> dict:
    check = SqlParseCheck(SqlParseCheck.Params(**params), base_dir=Path("."))
    return check.evaluate({params.get("field", "sql"): sql})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t",
        "select a from t where b = 'x' order by a",
        "WITH x AS (SELECT 1 AS v) SELECT v FROM x",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT n FROM c",
        "SELECT a FROM t UNION SELECT b FROM u",
        "SELECT a FROM t INTERSECT SELECT a FROM u",
        "SELECT a FROM t EXCEPT SELECT a FROM u",
        "VALUES (1), (2)",
        "(SELECT a FROM t)",
        "SELECT a FROM t WHERE a IN (SELECT a FROM u)",
        "SELECT a FROM t;",
    ],
)
def test_read_only_queries(sql: str) -> None:
    result = evaluate(sql)
    assert result["parse_ok"] is True
    assert result["read_only"] is True
    assert result["sql_parse_error"] is None
    assert result["sql_normalized"]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM t",
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DROP TABLE t",
        "CREATE TABLE x (a INT)",
        "ALTER TABLE t ADD COLUMN b INT",
        "WITH x AS (SELECT 1) DELETE FROM t",
        "ATTACH 'other.db' AS o",
        "PRAGMA table_info(t)",
        "BEGIN",
        "SELECT 1; SELECT 2",
        "SELECT load_extension('evil')",
    ],
)
def test_not_read_only(sql: str) -> None:
    result = evaluate(sql)
    assert result["parse_ok"] is True
    assert result["read_only"] is False


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        (None, "empty"),
        ("-- only a comment", "empty"),
        ("SELECT FROM WHERE", "Expected table name but got 'WHERE'"),
        ("SELECT 'unterminated", "Error tokenizing"),
        ("hello world", "not a statement"),
    ],
)
def test_parse_failures(sql: str | None, error: str) -> None:
    result = evaluate(sql)
    assert result["parse_ok"] is False
    assert result["read_only"] is False
    assert result["sql_normalized"] is None
    assert error in result["sql_parse_error"]
    assert "\x1b" not in result["sql_parse_error"]


def test_normalized_form_is_canonical() -> None:
    a = evaluate("select  A from T\n where b=1")["sql_normalized"]
    b = evaluate("SELECT a FROM t WHERE b = 1;")["sql_normalized"]
    assert a == b == "SELECT a FROM t WHERE b = 1"
    assert normalize_sql("SELECT 'Keep Case' FROM t") == "SELECT 'Keep Case' FROM t"
    assert normalize_sql("SELECT FROM WHERE") is None


def test_field_and_dialect_params() -> None:
    result = evaluate("SELECT a FROM t", field="query", dialect="postgres")
    assert result["parse_ok"] is True
    with pytest.raises(ValidationError):
        SqlParseCheck.Params(column="x")


@pytest.mark.parametrize(
    ("sql", "ordered"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("SELECT a FROM t ORDER BY a DESC LIMIT 3", True),
        ("SELECT 1 UNION SELECT 2 ORDER BY 1", True),
        ("(SELECT a FROM t ORDER BY a)", True),
        ("WITH x AS (SELECT 1 AS v) SELECT v FROM x ORDER BY v", True),
        ("SELECT a FROM t", False),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a)", False),
        ("WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x", False),
        ("SELECT a FROM t WHERE b = 'order by'", False),
        ("SELECT group_concat(a) OVER (ORDER BY a) FROM t", False),
        # sqlglot cannot parse these: the depth-0 lexical fallback decides
        ("SELECT a FROM t ORDER BY a ~~~", True),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a) ~~~", False),
    ],
)
def test_has_top_level_order_by(sql: str, ordered: bool) -> None:
    assert has_top_level_order_by(sql) is ordered


def test_contract() -> None:
    check = SqlParseCheck(SqlParseCheck.Params(), base_dir=Path("."))
    assert get_check_class("sql_parse") is SqlParseCheck
    assert check.reads() == ["sql"]
    assert set(SqlParseCheck.outputs) == {
        "parse_ok",
        "sql_normalized",
        "sql_parse_error",
        "read_only",
    }
