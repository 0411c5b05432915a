"""SqliteExecCheck: safe execution, error classes, gold matching, memoised gold results."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdbuild.checks import get_check_class
from fdbuild.checks.resultset import result_signature, results_match
from fdbuild.checks.sqlite_exec import SqliteExecCheck
from fdbuild.checks.sqlsafe import ExecError, SafeConnection, screen, split_first_statement
from fdbuild.errors import SpecError

SCHEMA = """
CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, score REAL, country TEXT);
INSERT INTO singer VALUES
  (1, 'Ann', 34, 7.5, 'FR'),
  (2, 'Bob', 25, 6.25, NULL),
  (3, 'Cid', 41, 9.0, 'US'),
  (4, 'Ann', 29, 8.1, 'FR'),
  (5, 'Dee', 52, NULL, NULL),
  (6, 'Eve', 38, 5.0, 'US');
CREATE TABLE song (id INTEGER PRIMARY KEY, singer_id INTEGER, title TEXT, sales REAL);
INSERT INTO song VALUES (1, 1, 'A;B', 10.5), (2, 1, 'It''s', 3), (3, 3, 'C', 0.1), (4, 6, 'D', 0.2);
CREATE VIEW older AS SELECT name FROM singer WHERE age > 35;
"""


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exec")
    conn = sqlite3.connect(folder / "music.db")
    conn.executescript(SCHEMA)
    conn.commit()
    conn.close()
    return folder


@pytest.fixture
def check(db_dir: Path) -> Any:
    instance = SqliteExecCheck(
        SqliteExecCheck.Params(db="music.db", timeout_ms=1000), base_dir=db_dir
    )
    yield instance
    instance.close()


NAMES = "SELECT name FROM singer"
# (id, candidate, gold, expected exec_error, expected gold_match)
CORPUS: list[tuple[str, str | None, str | None, str | None, bool | None]] = [
    ("identical", NAMES, NAMES, None, True),
    (
        "equivalent_filter",
        "SELECT name FROM singer WHERE NOT age <= 30",
        "SELECT name FROM singer WHERE age > 30",
        None,
        True,
    ),
    (
        "join_vs_subquery",
        "SELECT DISTINCT s.name FROM singer s JOIN song g ON g.singer_id = s.id",
        "SELECT name FROM singer WHERE id IN (SELECT singer_id FROM song)",
        None,
        True,
    ),
    (
        "union_vs_or",
        "SELECT name FROM singer WHERE age < 30 UNION ALL SELECT name FROM singer WHERE age > 50",
        "SELECT name FROM singer WHERE age < 30 OR age > 50",
        None,
        True,
    ),
    ("view", "SELECT name FROM older", "SELECT name FROM singer WHERE age > 35", None, True),
    (
        "order_ignored_without_gold_order_by",
        "SELECT name FROM singer ORDER BY name DESC",
        NAMES,
        None,
        True,
    ),
    (
        "gold_order_by_same_order",
        "SELECT name FROM singer ORDER BY age",
        "SELECT name FROM singer ORDER BY age ASC",
        None,
        True,
    ),
    (
        "gold_order_by_reversed",
        "SELECT name FROM singer ORDER BY age DESC",
        "SELECT name FROM singer ORDER BY age",
        None,
        False,
    ),
    (
        "gold_order_by_candidate_unordered",
        "SELECT name FROM singer",
        "SELECT name FROM singer ORDER BY age DESC",
        None,
        False,
    ),
    (
        "gold_order_by_in_subquery_only",
        "SELECT name FROM singer ORDER BY name",
        "SELECT name FROM (SELECT name FROM singer ORDER BY age)",
        None,
        True,
    ),
    ("int_vs_float", "SELECT 1", "SELECT 1.0", None, True),
    ("count_vs_sum", "SELECT COUNT(*) FROM singer", "SELECT SUM(1.0) FROM singer", None, True),
    ("float_within_tol", "SELECT 0.1 + 0.2", "SELECT 0.3", None, True),
    ("float_beyond_tol", "SELECT 0.3001", "SELECT 0.3", None, False),
    (
        "avg_two_ways",
        "SELECT AVG(score) FROM singer",
        "SELECT SUM(score) / COUNT(score) FROM singer",
        None,
        True,
    ),
    (
        "nulls_equal_nulls",
        "SELECT country FROM singer ORDER BY id DESC",
        "SELECT country FROM singer",
        None,
        True,
    ),
    ("null_is_not_empty_string", "SELECT NULL", "SELECT ''", None, False),
    ("text_is_not_number", "SELECT '1'", "SELECT 1", None, False),
    ("duplicates_count", "SELECT DISTINCT name FROM singer", NAMES, None, False),
    (
        "column_order_matters",
        "SELECT age, name FROM singer",
        "SELECT name, age FROM singer",
        None,
        False,
    ),
    (
        "column_names_ignored",
        "SELECT name AS singer_name, age AS years FROM singer",
        "SELECT name, age FROM singer",
        None,
        True,
    ),
    ("extra_column", "SELECT name, age FROM singer", NAMES, None, False),
    (
        "both_empty",
        "SELECT name FROM singer WHERE age > 1000",
        "SELECT name FROM singer WHERE 1 = 0",
        None,
        True,
    ),
    ("empty_vs_rows", "SELECT name FROM singer WHERE 0", NAMES, None, False),
    ("blob", "SELECT x'00ff'", "SELECT x'00ff'", None, True),
    (
        "semicolon_in_literal",
        "SELECT title FROM song WHERE title = 'A;B'",
        "SELECT 'A;B'",
        None,
        True,
    ),
    ("trailing_semicolon_and_comment", "SELECT name FROM singer; -- done", NAMES, None, True),
    (
        "recursive_cte",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT n FROM c",
        "VALUES (1), (2), (3)",
        None,
        True,
    ),
    (
        "window_function",
        "SELECT name, ROW_NUMBER() OVER (ORDER BY id) FROM singer",
        "SELECT name, id FROM singer",
        None,
        True,
    ),
    ("no_gold", NAMES, None, None, None),
    ("blank_gold", NAMES, "  ", None, None),
    # --- failures of the candidate -----------------------------------------------------
    ("syntax_error", "SELEC name FROM singer", NAMES, "syntax_error", False),
    ("unterminated_string", "SELECT 'abc", NAMES, "syntax_error", False),
    ("no_such_column", "SELECT nme FROM singer", NAMES, "runtime_error", False),
    ("empty_output", "", NAMES, "empty_sql", False),
    ("null_output", None, NAMES, "empty_sql", False),
    ("comment_only", "  -- nothing\n;", NAMES, "empty_sql", False),
    ("ddl_create", "CREATE TABLE evil (x)", NAMES, "not_read_only", False),
    ("ddl_drop", "DROP TABLE singer", NAMES, "not_read_only", False),
    ("ddl_alter", "ALTER TABLE singer ADD COLUMN x", NAMES, "not_read_only", False),
    ("dml_delete", "DELETE FROM singer", NAMES, "not_read_only", False),
    ("dml_update", "UPDATE singer SET age = 0", NAMES, "not_read_only", False),
    ("dml_insert", "INSERT INTO singer (name) VALUES ('x')", NAMES, "not_read_only", False),
    (
        "dml_replace",
        "REPLACE INTO singer (id, name) VALUES (1, 'x')",
        NAMES,
        "not_read_only",
        False,
    ),
    ("dml_in_cte", "WITH x AS (SELECT 1) DELETE FROM singer", NAMES, "not_read_only", False),
    (
        "dml_in_parenthesised_cte",
        "WITH x AS (SELECT 1) INSERT INTO singer (name) SELECT 'x'",
        NAMES,
        "not_read_only",
        False,
    ),
    ("attach", "ATTACH DATABASE ':memory:' AS other", NAMES, "not_read_only", False),
    ("detach", "DETACH DATABASE main", NAMES, "not_read_only", False),
    ("pragma_write", "PRAGMA journal_mode = WAL", NAMES, "not_read_only", False),
    ("pragma_query_only_off", "PRAGMA query_only = OFF", NAMES, "not_read_only", False),
    ("pragma_function", "SELECT * FROM pragma_table_info('singer')", NAMES, "not_read_only", False),
    ("load_extension", "SELECT load_extension('/tmp/evil.so')", NAMES, "not_read_only", False),
    ("transaction", "BEGIN IMMEDIATE", NAMES, "not_read_only", False),
    ("vacuum_into", "VACUUM INTO '/tmp/copy.db'", NAMES, "not_read_only", False),
    ("explain", "EXPLAIN SELECT 1", NAMES, "not_read_only", False),
    ("multiple_statements", "SELECT 1; DELETE FROM singer", NAMES, "multiple_statements", False),
    ("multiple_selects", "SELECT 1; SELECT 2;", NAMES, "multiple_statements", False),
    ("blob_too_big", "SELECT zeroblob(100000000)", NAMES, "runtime_error", False),
]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(
    ("name", "sql", "gold", "error", "match"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_corpus(
    check: SqliteExecCheck,
    name: str,
    sql: str | None,
    gold: str | None,
    error: str | None,
    match: bool | None,
) -> None:
    result = check.evaluate({"sql": sql, "gold_sql": gold})
    assert set(result) == set(SqliteExecCheck.outputs)
    assert result["exec_error"] == error, result["exec_detail"]
    assert result["exec_pass"] is (error is None)
    assert result["gold_match"] is match
    assert result["gold_error"] is None
    assert (result["result_sig"] is None) is (error is not None)
    assert result["exec_detail"]


def test_database_bytes_never_change(db_dir: Path) -> None:
    """Whatever the candidates do, the file (and its folder) is left exactly as it was."""
    db = db_dir / "music.db"
    before, files_before = db.read_bytes(), sorted(p.name for p in db_dir.iterdir())
    check = SqliteExecCheck(SqliteExecCheck.Params(db="music.db", timeout_ms=300), base_dir=db_dir)
    for _, sql, gold, _, _ in CORPUS:
        check.evaluate({"sql": sql, "gold_sql": gold})
    check.evaluate({"sql": RUNAWAY, "gold_sql": None})
    check.close()
    assert db.read_bytes() == before
    assert sorted(p.name for p in db_dir.iterdir()) == files_before


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE singer",
        "DELETE FROM singer",
        "INSERT INTO singer (name) VALUES ('x')",
        "CREATE TABLE evil (x)",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA writable_schema = ON",
        "PRAGMA user_version = 7",
        "BEGIN",
    ],
)
def test_authorizer_alone_refuses_writes(db_dir: Path, statement: str) -> None:
    """Defence in depth: without the static screen, the authorizer still denies."""
    assert screen(statement)[1] is not None
    conn = SafeConnection(db_dir / "music.db")
    try:
        result = conn.run_statement(statement, timeout_ms=1000, max_rows=10)
    finally:
        conn.close()
    assert result.error is ExecError.NOT_READ_ONLY
    assert result.detail.startswith("denied:")


def test_read_only_open_alone_refuses_writes(db_dir: Path) -> None:
    """Defence in depth: with the authorizer removed, mode=ro still refuses."""
    before = (db_dir / "music.db").read_bytes()
    conn = SafeConnection(db_dir / "music.db")
    conn._conn.set_authorizer(None)  # white-box: disable one layer to test the next
    try:
        result = conn.run_statement("DELETE FROM singer", timeout_ms=1000, max_rows=10)
    finally:
        conn.close()
    assert result.error is ExecError.NOT_READ_ONLY
    assert "readonly" in result.detail
    assert (db_dir / "music.db").read_bytes() == before


RUNAWAY = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"


@pytest.mark.parametrize(
    "sql",
    [
        RUNAWAY,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c ORDER BY n DESC LIMIT 1",
        "SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e, singer f, singer g, singer h, singer i, singer j, singer k",
    ],
)
def test_runaway_query_times_out(db_dir: Path, sql: str) -> None:
    timeout_ms = 400
    check = SqliteExecCheck(
        SqliteExecCheck.Params(db="music.db", timeout_ms=timeout_ms), base_dir=db_dir
    )
    started = time.monotonic()
    result = check.evaluate({"sql": sql, "gold_sql": None})
    elapsed = time.monotonic() - started
    check.close()
    assert result["exec_error"] == "timeout"
    assert elapsed < 2 * timeout_ms / 1000


def test_connection_is_usable_after_timeout(check: SqliteExecCheck) -> None:
    assert check.evaluate({"sql": RUNAWAY, "gold_sql": None})["exec_error"] == "timeout"
    assert check.evaluate({"sql": NAMES, "gold_sql": NAMES})["gold_match"] is True


def test_too_many_rows(db_dir: Path) -> None:
    check = SqliteExecCheck(SqliteExecCheck.Params(db="music.db", max_rows=5), base_dir=db_dir)
    try:
        assert check.evaluate({"sql": NAMES, "gold_sql": None})["exec_error"] == "too_many_rows"
        five = check.evaluate({"sql": NAMES + " LIMIT 5", "gold_sql": None})
        assert five["exec_pass"] is True
        assert five["exec_detail"] == "5 rows, 1 column"
        gold_too_big = check.evaluate({"sql": "SELECT 1", "gold_sql": NAMES})
        assert gold_too_big["gold_error"].startswith("too_many_rows")
    finally:
        check.close()


@pytest.mark.parametrize(
    ("sql", "gold", "gold_error"),
    [
        (NAMES, "SELEC name FROM singer", "syntax_error: "),
        (NAMES, "SELECT nme FROM singer", "runtime_error: no such column: nme"),
        (NAMES, "DELETE FROM singer", "not_read_only: "),
        ("SELEC broken", "SELECT nme FROM singer", "runtime_error: "),
    ],
)
def test_broken_gold_is_reported_not_a_mismatch(
    check: SqliteExecCheck, sql: str, gold: str, gold_error: str
) -> None:
    result = check.evaluate({"sql": sql, "gold_sql": gold})
    assert result["gold_match"] is None
    assert result["gold_error"].startswith(gold_error)


def test_gold_runs_once_per_build(check: SqliteExecCheck, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = SafeConnection.query

    def spy(self: SafeConnection, sql: str | None, **kwargs: Any) -> Any:
        calls.append(sql or "")
        return original(self, sql, **kwargs)

    monkeypatch.setattr(SafeConnection, "query", spy)
    gold = "SELECT name FROM singer WHERE age > 30"
    for candidate in [NAMES, gold, "SELECT name FROM older", NAMES]:
        check.evaluate({"sql": candidate, "gold_sql": gold})
    assert calls.count(gold) == 2  # once as gold, once as a candidate
    assert len(calls) == 5


def test_custom_columns(db_dir: Path) -> None:
    params = SqliteExecCheck.Params(db=str(db_dir / "music.db"), sql="query", gold="expected")
    check = SqliteExecCheck(params, base_dir=Path("/nonexistent"))  # absolute db path
    try:
        assert check.reads() == ["query", "expected"]
        assert check.file_deps() == {"db": db_dir / "music.db"}
        assert check.evaluate({"query": NAMES, "expected": NAMES})["gold_match"] is True
    finally:
        check.close()


def test_gold_column_can_be_disabled(db_dir: Path) -> None:
    check = SqliteExecCheck(SqliteExecCheck.Params(db="music.db", gold=None), base_dir=db_dir)
    try:
        assert check.reads() == ["sql"]
        result = check.evaluate({"sql": NAMES, "gold_sql": "SELEC"})
        assert result["exec_pass"] is True
        assert result["gold_match"] is None and result["gold_error"] is None
    finally:
        check.close()


def test_missing_database_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="nope.db"):
        SqliteExecCheck(SqliteExecCheck.Params(db="nope.db"), base_dir=tmp_path)
    assert not (tmp_path / "nope.db").exists()


def test_result_sig_is_stable_and_order_insensitive(check: SqliteExecCheck) -> None:
    def sig(sql: str) -> str:
        return check.evaluate({"sql": sql, "gold_sql": None})["result_sig"]

    assert sig(NAMES) == sig("SELECT name FROM (SELECT name FROM singer ORDER BY name DESC)")
    assert sig(NAMES) == sig(NAMES)
    assert sig("SELECT 0.1 + 0.2") == sig("SELECT 0.3")
    assert sig("SELECT 1") == sig("SELECT 1.0")
    assert sig(NAMES) != sig("SELECT DISTINCT name FROM singer")
    assert sig("SELECT name FROM singer ORDER BY age") != sig(
        "SELECT name FROM singer ORDER BY age DESC"
    )
    assert sig(NAMES).startswith("x3:")


def test_threads_get_their_own_connections(db_dir: Path) -> None:
    check = SqliteExecCheck(SqliteExecCheck.Params(db="music.db"), base_dir=db_dir)
    rows = [{"sql": sql, "gold_sql": gold} for _, sql, gold, _, _ in CORPUS] * 2
    serial = [check.evaluate(row) for row in rows]
    all_alive = threading.Barrier(3)  # no thread exits before all ran: their idents differ

    def worker(part: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [check.evaluate(row) for row in part]
        all_alive.wait(timeout=30)
        return out

    with ThreadPoolExecutor(max_workers=3) as pool:
        parts = list(pool.map(worker, [rows, rows[::-1], rows]))
    assert parts == [serial, serial[::-1], serial]
    assert len(check._connections) == 4  # the main thread's and one per worker
    check.close()
    assert check._connections == {}


def test_contract(check: SqliteExecCheck) -> None:
    assert get_check_class("sqlite_exec") is SqliteExecCheck
    assert check.reads() == ["sql", "gold_sql"]
    assert set(SqliteExecCheck.outputs) == {
        "exec_pass",
        "exec_error",
        "exec_detail",
        "gold_match",
        "gold_error",
        "result_sig",
    }


# --- result comparison ------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.text(alphabet="ab' ;", max_size=4),
)


def rows_of(width: int) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    return st.lists(st.tuples(*[VALUES] * width), max_size=8)


@given(st.integers(1, 3).flatmap(lambda w: rows_of(w)), st.randoms())
def test_match_is_permutation_invariant_without_order_by(rows: list, rnd: Any) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert results_match(shuffled, rows, ordered=False, tol=1e-6)
    assert results_match(rows, shuffled, ordered=False, tol=1e-6)
    columns = len(rows[0]) if rows else 0
    assert result_signature(shuffled, columns=columns, ordered=False, tol=1e-6) == (
        result_signature(rows, columns=columns, ordered=False, tol=1e-6)
    )


@given(st.integers(1, 3).flatmap(lambda w: st.tuples(rows_of(w), rows_of(w))))
def test_match_is_symmetric(pair: tuple[list, list]) -> None:
    a, b = pair
    for ordered in (False, True):
        assert results_match(a, b, ordered=ordered, tol=1e-6) == results_match(
            b, a, ordered=ordered, tol=1e-6
        )


@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), max_size=8), st.randoms())
def test_tiny_float_noise_still_matches(rows: list, rnd: Any) -> None:
    noisy = [tuple(v + rnd.uniform(-1e-9, 1e-9) for v in row) for row in rows]
    rnd.shuffle(noisy)
    assert results_match(noisy, rows, ordered=False, tol=1e-6)


def test_tolerant_matching_beyond_sorted_pairing() -> None:
    """Sorting pairs (1.0, 2.0) with (1.0, 1.0); only a real matching finds the answer."""
    a = [(1.0, 2.0), (1.0000001, 1.0)]
    b = [(1.0000001, 2.0), (1.0, 1.0)]
    assert results_match(a, b, ordered=False, tol=1e-6)
    assert not results_match(a, b, ordered=False, tol=0)
    assert not results_match(
        [(1.0, 2.0), (1.0, 2.0)], [(1.0, 2.0), (1.0, 1.0)], ordered=False, tol=1e-6
    )


@pytest.mark.parametrize(
    ("a", "b", "ordered", "expected"),
    [
        ([(10,), (9,), (100,)], [(9,), (10,), (100,)], False, True),  # no str() sort
        ([(1, "a")], [(1.0, "a")], True, True),
        ([(None,)], [(None,)], True, True),
        ([(None,)], [(0,)], False, False),
        ([("1",)], [(1,)], False, False),
        ([(b"\x00",)], [(b"\x00",)], False, True),
        ([(1, 2)], [(1,)], False, False),
        ([(1,), (1,)], [(1,)], False, False),
        ([(1,), (2,)], [(2,), (1,)], True, False),
        ([(float("inf"),)], [(float("inf"),)], False, True),
    ],
)
def test_results_match_cases(a: list, b: list, ordered: bool, expected: bool) -> None:
    assert results_match(a, b, ordered=ordered, tol=1e-6) is expected


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(-99, 99),
            st.sampled_from([None, 0.5, 2.25, -1.0]),
            st.sampled_from(["x", "y''z", None]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_executed_permutations_match(check: SqliteExecCheck, rows: list, rnd: Any) -> None:
    """End to end: VALUES in any row order matches the gold and gives the same signature."""

    def literal(value: Any) -> str:
        return "NULL" if value is None else f"'{value}'" if isinstance(value, str) else repr(value)

    def query(rs: list) -> str:
        return (
            "SELECT * FROM (VALUES "
            + ", ".join("(" + ", ".join(map(literal, r)) + ")" for r in rs)
            + ")"
        )

    shuffled = list(rows)
    rnd.shuffle(shuffled)
    first = check.evaluate({"sql": query(shuffled), "gold_sql": query(rows)})
    second = check.evaluate({"sql": query(rows), "gold_sql": query(shuffled)})
    assert first["gold_match"] is True and second["gold_match"] is True
    assert first["result_sig"] == second["result_sig"]


# --- static screening ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "statement", "rest"),
    [
        ("SELECT 1", "SELECT 1", ""),
        ("SELECT 1; SELECT 2", "SELECT 1;", " SELECT 2"),
        ("SELECT 'a;b'; x", "SELECT 'a;b';", " x"),
        ('SELECT "a;b", [c;d], `e;f`', 'SELECT "a;b", [c;d], `e;f`', ""),
        ("SELECT 1 -- c; d\n; x", "SELECT 1 -- c; d\n;", " x"),
        ("SELECT /* ; */ 1; x", "SELECT /* ; */ 1;", " x"),
        ("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END; x", None, " x"),
        ("SELECT 'unclosed; x", "SELECT 'unclosed; x", ""),
    ],
)
def test_split_first_statement(sql: str, statement: str | None, rest: str) -> None:
    first, tail = split_first_statement(sql)
    assert tail == rest
    assert first == (statement if statement is not None else sql[: len(sql) - len(rest)])


def test_screen_is_linear_in_semicolons_inside_literals() -> None:
    sql = "SELECT '" + ";" * 90_000 + "'"
    started = time.monotonic()
    assert screen(sql) == (sql, None)
    assert time.monotonic() - started < 1.0


def test_overlong_sql_is_refused() -> None:
    statement, refusal = screen("SELECT " + "1 + " * 30_000 + "1")
    assert statement == "" and refusal is not None
    assert refusal.error is ExecError.RUNTIME_ERROR
