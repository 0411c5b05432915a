"""Tests for ``fdbuild import wikisql`` on a hand-written WikiSQL-format release.

The checked-in ``data/wikisql_expected_train.jsonl`` pins the output bytes; after an
intended change to the output, regenerate it with
``FDBUILD_UPDATE_EXPECTED=1 pytest tests/unit/test_import_wikisql.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fdbuild.cli import import_cmd
from fdbuild.errors import SpecError
from fdbuild.importers import import_wikisql
from tests.support.wikisql_fixture import (
    ALBUMS,
    PLAYERS,
    WikiSQLFixture,
    expected_answer,
    write_wikisql_fixture,
)

EXPECTED = Path(__file__).parent / "data" / "wikisql_expected_train.jsonl"
EXPECTED_LIMIT, EXPECTED_SEED = 12, 13


@pytest.fixture
def release(tmp_path: Path) -> WikiSQLFixture:
    return write_wikisql_fixture(tmp_path / "src")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _line_index(task_id: str) -> int:
    return int(task_id.rsplit("-", 1)[1])


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _same_values(actual: list[Any], expected: list[Any]) -> bool:
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected, strict=True):
        if isinstance(e, float) and a != pytest.approx(e):
            return False
        if not isinstance(e, float) and a != e:
            return False
    return True


# ----------------------------------------------------------------- gold SQL meaning


def test_every_gold_query_returns_what_the_structured_query_means(
    release: WikiSQLFixture, tmp_path: Path
) -> None:
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    rows = _rows(report.jsonl_path)
    assert len(rows) == release.usable == report.rows_written
    for row in rows:
        question = release.questions[_line_index(row["task_id"])]
        assert row["question"] == question.question
        result = _query(report.db_path, row["gold_sql"])
        actual = sorted(value for (value,) in result) if question.agg == 0 else [result[0][0]]
        expected = expected_answer(release, question)
        assert _same_values(actual, expected), (row["gold_sql"], actual, expected)


def test_aggregates_and_operators_are_all_covered(release: WikiSQLFixture, tmp_path: Path) -> None:
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    gold = [row["gold_sql"] for row in _rows(report.jsonl_path)]
    for agg in ("MAX(", "MIN(", "COUNT(", "SUM(", "AVG("):
        assert any(f"SELECT {agg}" in sql for sql in gold), agg
    assert any(sql.startswith("SELECT col") for sql in gold)
    for op in (" = ", " > ", " < "):
        assert any(op in sql for sql in gold), op


def test_gold_sql_shape_follows_fastdistill(release: WikiSQLFixture, tmp_path: Path) -> None:
    """SELECT AGG(colN) FROM table WHERE ... with no ';', no AS, literals typed by column."""
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    by_line = {_line_index(r["task_id"]): r["gold_sql"] for r in _rows(report.jsonl_path)}
    assert by_line[0] == "SELECT col0 FROM table_1_10000_1 WHERE col1 = 'brazil'"
    assert by_line[3] == "SELECT MIN(col3) FROM table_1_10000_1 WHERE col4 > 1.8"
    assert by_line[7] == ("SELECT col0 FROM table_1_10000_1 WHERE col3 > 20 AND col2 = 'forward'")
    assert by_line[8] == "SELECT COUNT(col0) FROM table_1_10000_1"
    # Text column, JSON number: compared as text, as the db stores it.
    assert by_line[13].endswith("WHERE col3 = '1835'")
    # Thousands separators are read as the official evaluator reads them.
    assert by_line[14].endswith("WHERE col2 > 2000000")
    # Quotes are escaped, and lower-casing keeps non-ASCII letters.
    assert by_line[11].endswith("WHERE col0 = 'n''golo kanté'")
    assert by_line[18].endswith("WHERE col0 = 'st. john''s'")


def test_literal_case_follows_the_db(release: WikiSQLFixture, tmp_path: Path) -> None:
    """Lower-cased tables get lower-case literals; a table kept in its casing keeps them."""
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    rows = {_line_index(r["task_id"]): r for r in _rows(report.jsonl_path)}
    assert rows[19]["table_id"] == ALBUMS["id"]
    assert rows[19]["gold_sql"].endswith("WHERE col0 = 'Thriller'")
    assert "lower case" not in rows[19]["schema"]
    assert rows[5]["gold_sql"].endswith("WHERE col1 = 'argentina'")
    assert "-- All text values in this table are lower case." in rows[5]["schema"]


def test_schema_is_runnable_ddl_matching_the_db(release: WikiSQLFixture, tmp_path: Path) -> None:
    """The schema the teacher sees creates the same columns the gold SQL uses."""
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    for row in _rows(report.jsonl_path):
        mem = sqlite3.connect(":memory:")
        try:
            mem.executescript(row["schema"])
            mem.execute(row["gold_sql"]).fetchall()
            ddl_columns = mem.execute(f"PRAGMA table_info({row['table']})").fetchall()
        finally:
            mem.close()
        db_columns = _query(report.db_path, f"PRAGMA table_info({row['table']})")
        assert [c[1:3] for c in ddl_columns] == [c[1:3] for c in db_columns]
        for header in release.tables[row["table_id"]]["header"]:
            assert f"-- {header}" in row["schema"]


def test_output_fields_and_task_ids(release: WikiSQLFixture, tmp_path: Path) -> None:
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    rows = _rows(report.jsonl_path)
    for row in rows:
        assert set(row) == {
            "task_id",
            "question",
            "schema",
            "table_id",
            "table",
            "gold_sql",
            "structured_query",
        }
        question = release.questions[_line_index(row["task_id"])]
        assert row["table_id"] == question.table_id
        assert row["table"] == "table_" + question.table_id.replace("-", "_")
        assert row["structured_query"] == question.line()["sql"]
    assert rows[0]["task_id"] == "wikisql-train-000000"
    assert [r["task_id"] for r in rows] == sorted(r["task_id"] for r in rows)


def test_db_is_a_byte_copy(release: WikiSQLFixture, tmp_path: Path) -> None:
    report = import_wikisql(release.folder, "train", 5, 13, tmp_path / "out")
    assert report.db_path.read_bytes() == release.path("db").read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["train.db", "train.jsonl"]


# ----------------------------------------------------------------- skips


def test_skipped_rows_are_counted_by_reason(release: WikiSQLFixture, tmp_path: Path) -> None:
    report = import_wikisql(release.folder, "train", None, 13, tmp_path / "out")
    assert report.skipped == dict(sorted(release.expected_skips.items()))
    assert report.questions_read == len(release.questions)
    assert report.usable == release.usable
    assert report.empty_gold_results == 1  # "Which player is from Japan?"
    written = {_line_index(r["task_id"]) for r in _rows(report.jsonl_path)}
    skipped = {i for i, q in enumerate(release.questions) if q.skip}
    assert not written & skipped


# ----------------------------------------------------------------- sampling


def test_same_seed_gives_the_checked_in_bytes(release: WikiSQLFixture, tmp_path: Path) -> None:
    first = import_wikisql(release.folder, "train", EXPECTED_LIMIT, EXPECTED_SEED, tmp_path / "a")
    second = import_wikisql(release.folder, "train", EXPECTED_LIMIT, EXPECTED_SEED, tmp_path / "b")
    data = first.jsonl_path.read_bytes()
    assert data == second.jsonl_path.read_bytes()
    assert first.rows_written == EXPECTED_LIMIT
    if os.environ.get("FDBUILD_UPDATE_EXPECTED") == "1":
        EXPECTED.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED.write_bytes(data)
    assert data == EXPECTED.read_bytes()


def test_different_seed_gives_a_different_sample(release: WikiSQLFixture, tmp_path: Path) -> None:
    a = import_wikisql(release.folder, "train", EXPECTED_LIMIT, 13, tmp_path / "a")
    b = import_wikisql(release.folder, "train", EXPECTED_LIMIT, 14, tmp_path / "b")
    ids_a = {r["task_id"] for r in _rows(a.jsonl_path)}
    ids_b = {r["task_id"] for r in _rows(b.jsonl_path)}
    assert len(ids_a) == len(ids_b) == EXPECTED_LIMIT
    assert ids_a != ids_b


def test_larger_limit_keeps_the_smaller_sample(release: WikiSQLFixture, tmp_path: Path) -> None:
    small = import_wikisql(release.folder, "train", 4, 13, tmp_path / "small")
    large = import_wikisql(release.folder, "train", 15, 13, tmp_path / "large")
    small_lines = set(small.jsonl_path.read_text(encoding="utf-8").splitlines())
    large_lines = set(large.jsonl_path.read_text(encoding="utf-8").splitlines())
    assert len(small_lines) == 4 and small_lines < large_lines


def test_limit_above_usable_writes_every_usable_row(
    release: WikiSQLFixture, tmp_path: Path
) -> None:
    report = import_wikisql(release.folder, "train", 1000, 13, tmp_path / "out")
    everything = import_wikisql(release.folder, "train", None, 99, tmp_path / "all")
    assert report.rows_written == release.usable
    assert report.jsonl_path.read_bytes() == everything.jsonl_path.read_bytes()


# ----------------------------------------------------------------- bad input


def _append(path: Path, text: str) -> int:
    """Append one line and return its 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, text]) + "\n", encoding="utf-8")
    return len(lines) + 1


def _import_error(release: WikiSQLFixture, out: Path) -> str:
    with pytest.raises(SpecError) as info:
        import_wikisql(release.folder, "train", None, 13, out)
    assert info.value.exit_code == 2
    return info.value.message


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"table_id": "1-10000-1", "question": "x", "sql": {"sel": 0', "malformed JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ('{"table_id": "1-10000-1", "question": "x"}', "missing key 'sql'"),
        (
            '{"table_id": "1-10000-1", "question": "x", "sql": {"sel": "0", "agg": 0, "conds": []}}',
            "key 'sql.sel'",
        ),
        (
            '{"table_id": "1-10000-1", "question": "x", "sql": {"sel": 0, "agg": 0, "conds": [[0, 0]]}}',
            "key 'sql.conds[0]'",
        ),
        ('{"table_id": 7, "question": "x", "sql": {}}', "key 'table_id'"),
    ],
)
def test_bad_question_lines_name_file_line_and_key(
    release: WikiSQLFixture, tmp_path: Path, line: str, needle: str
) -> None:
    lineno = _append(release.path("questions"), line)
    message = _import_error(release, tmp_path / "out")
    assert f"{release.path('questions')}:{lineno}:" in message
    assert needle in message


def test_bad_tables_line_names_file_and_line(release: WikiSQLFixture, tmp_path: Path) -> None:
    lineno = _append(release.path("tables"), json.dumps(PLAYERS))
    message = _import_error(release, tmp_path / "out")
    assert f"{release.path('tables')}:{lineno}:" in message
    assert "key 'id'" in message and "already defined on line 1" in message


def test_non_utf8_line_is_named(release: WikiSQLFixture, tmp_path: Path) -> None:
    with release.path("questions").open("ab") as handle:
        handle.write(b'{"question": "\xff"}\n')
    message = _import_error(release, tmp_path / "out")
    assert f"{release.path('questions')}:{len(release.questions) + 1}: not UTF-8" in message


@pytest.mark.parametrize("kind", ["questions", "tables", "db"])
def test_missing_release_file_is_named(release: WikiSQLFixture, tmp_path: Path, kind: str) -> None:
    release.path(kind).unlink()
    message = _import_error(release, tmp_path / "out")
    assert str(release.path(kind)) in message and "missing" in message


def test_a_db_that_is_not_sqlite_is_named(release: WikiSQLFixture, tmp_path: Path) -> None:
    release.path("db").write_bytes(b"not a database at all" * 100)
    message = _import_error(release, tmp_path / "out")
    assert str(release.path("db")) in message and "SQLite" in message


@pytest.mark.parametrize(
    ("split", "limit", "needle"),
    [("../train", None, "--split"), ("train", 0, "--limit")],
)
def test_bad_arguments_are_spec_errors(
    release: WikiSQLFixture, tmp_path: Path, split: str, limit: int | None, needle: str
) -> None:
    with pytest.raises(SpecError, match=needle):
        import_wikisql(release.folder, split, limit, 13, tmp_path / "out")


def test_out_may_not_be_src(release: WikiSQLFixture) -> None:
    with pytest.raises(SpecError, match="--out"):
        import_wikisql(release.folder, "train", None, 13, release.folder)


def test_failed_import_keeps_previous_outputs_and_leaves_no_temp_files(
    release: WikiSQLFixture, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    good = import_wikisql(release.folder, "train", 5, 13, out)
    before = (good.jsonl_path.read_bytes(), good.db_path.read_bytes())
    _append(release.path("questions"), "{not json")
    _import_error(release, out)
    assert (good.jsonl_path.read_bytes(), good.db_path.read_bytes()) == before
    assert sorted(p.name for p in out.iterdir()) == ["train.db", "train.jsonl"]


# ----------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdbuild")
    import_cmd.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_run_prints_a_summary(
    release: WikiSQLFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["import", "wikisql", "--src", str(release.folder), "--split", "train"]
        + ["--limit", "12", "--seed", "13", "--out", str(out)]
    )
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "wrote 12 rows" in captured.out
    assert "unsupported_op 1" in captured.out
    assert str(out / "train.jsonl") in captured.out and str(out / "train.db") in captured.out
    assert len(captured.out.strip().splitlines()) == 1
    assert "importing" in captured.err
    assert (out / "train.jsonl").read_bytes() == EXPECTED.read_bytes()


def test_cli_defaults_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["import", "wikisql", "--src", "s", "--out", "o"])
    assert (args.split, args.limit, args.seed) == ("train", None, 13)
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["import", "wikisql", "--src", "s", "--out", "o", "--limit", "0"])
    assert info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


# ----------------------------------------------------------------- shipped example


def test_wikisql_mini_example_is_reproducible(tmp_path: Path) -> None:
    """examples/wikisql_mini was made by make_mini.py and still matches it byte for byte."""
    import importlib.util

    folder = Path(__file__).resolve().parents[2] / "examples" / "wikisql_mini"
    spec = importlib.util.spec_from_file_location("make_mini", folder / "make_mini.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reports = module.make(tmp_path)
    for report in reports:
        shipped = folder / report.jsonl_path.name
        assert report.jsonl_path.read_bytes() == shipped.read_bytes(), shipped
        assert report.rows_written == len(shipped.read_text(encoding="utf-8").splitlines())
        assert not report.skipped
        assert report.empty_gold_results == 0
        for row in _rows(shipped):
            _query(folder / report.db_path.name, row["gold_sql"])
