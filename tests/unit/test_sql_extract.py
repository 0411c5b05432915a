"""extract_sql over a corpus of messy teacher replies (FastDistill parity and its fixes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdbuild.errors import SpecError
from fdbuild.parsers.sql import SqlParser, extract_sql

Q = "SELECT name FROM singer WHERE age > 30"

CORPUS: list[tuple[str, str, str]] = [
    # --- plain -------------------------------------------------------------------------
    ("plain", Q, Q),
    ("plain_semicolon", Q + ";", Q),
    ("plain_lowercase", "select count(*) from t", "select count(*) from t"),
    ("surrounding_whitespace", f"\n\n   {Q}  \n\n", Q),
    (
        "multiline",
        "SELECT a,\n       b\nFROM t\nWHERE c = 1;",
        "SELECT a,\n       b\nFROM t\nWHERE c = 1",
    ),
    # --- think tags ----------------------------------------------------------------------
    ("think_closed", f"<think>I should select with care.</think>\n{Q}", Q),
    ("think_upper_case", f"<THINK>select stuff</THINK>{Q};", Q),
    ("think_analysis_tag", f"<analysis>with x</analysis>\n```sql\n{Q}\n```", Q),
    ("think_two_blocks", f"<think>a</think><reasoning>select b from c</reasoning>{Q}", Q),
    ("think_orphan_close", f"Okay, let me select the rows from singer.\n</think>\n\n{Q}", Q),
    ("think_unclosed_dropped", "<think>The user wants SELECT name FROM singer, maybe", ""),
    ("think_unclosed_after_answer", f"{Q}\n<think>hmm, with more time", Q),
    # --- code fences -----------------------------------------------------------------------
    ("fence_sql", f"```sql\n{Q}\n```", Q),
    ("fence_sqlite", f"```sqlite\n{Q}\n```", Q),
    ("fence_upper_SQL", f"```SQL\n{Q};\n```", Q),
    ("fence_no_lang", f"```\n{Q}\n```", Q),
    ("fence_one_line", f"```{Q}```", Q),
    ("fence_unclosed", f"Here you go:\n```sql\n{Q}", Q),
    (
        "fence_after_prose",
        f"Sure! Here is the query with a join:\n\n```sql\n{Q}\n```\nHope it helps.",
        Q,
    ),
    ("fence_python_skipped", f"```python\nprint(1)\n```\n```sql\n{Q}\n```", Q),
    ("fence_with_comment", f"```sql\n-- names of older singers\n{Q}\n```", Q),
    ("fence_two_statements", f"```sql\n{Q};\nSELECT 2;\n```", Q),
    ("fence_broken_sql_kept", "```sql\nSELEC name FROM singer\n```", "SELEC name FROM singer"),
    ("stray_closing_fence", f"{Q}\n```", Q),
    ("fence_one_line_labelled", f"```sql {Q}```", Q),
    ("fence_label_only", "```sql ```", ""),
    ("fence_unlabelled_prose", "```\nno query today\n```", ""),
    # --- prefixes and labels -----------------------------------------------------------------
    ("sql_prefix", f"SQL: {Q}", Q),
    ("sql_prefix_fullwidth_colon", f"SQL：{Q}", Q),
    ("sql_prefix_newline", f"SQL:\n{Q}", Q),
    ("bold_label", f"**SQL:** {Q}", Q),
    ("answer_label", f"Answer: {Q}", Q),
    ("inline_code", f"The query is `{Q}`.", Q),
    # --- prose before and after ------------------------------------------------------------------
    ("prose_with_before", f"Here it is with care: {Q}", Q),
    ("prose_select_before", f"We select the name from the singer table:\n{Q}", Q),
    ("prose_apostrophe_before", f"Here's the query:\n{Q}", Q),
    (
        "prose_after_paragraph",
        "The query is\n\nSELECT a\nFROM b\n\nThis selects a.",
        "SELECT a\nFROM b",
    ),
    ("prose_after_same_line", "SELECT a FROM b which returns a", "SELECT a FROM b"),
    ("prose_after_sentence", "SELECT a FROM b. This returns every a.", "SELECT a FROM b"),
    ("explanation_marker", f"{Q}\nExplanation: filters by age.", Q),
    ("notes_marker_bold", f"{Q}\n\n**Notes:** none", Q),
    ("bullets_after", f"{Q}\n\n- filters by age\n- returns names", Q),
    # --- literals and comments are respected -------------------------------------------------------
    ("semicolon_in_literal", "SELECT a FROM b WHERE c = 'x;y'", "SELECT a FROM b WHERE c = 'x;y'"),
    (
        "stop_marker_in_literal",
        "SELECT a FROM b WHERE c = 'notes: x'",
        "SELECT a FROM b WHERE c = 'notes: x'",
    ),
    (
        "fence_marker_in_literal",
        "SELECT a FROM b WHERE c = '```'",
        "SELECT a FROM b WHERE c = '```'",
    ),
    (
        "escaped_quote",
        "SELECT a FROM b WHERE c = 'it''s; ok'",
        "SELECT a FROM b WHERE c = 'it''s; ok'",
    ),
    ("keyword_in_identifier", 'SELECT "with", "select" FROM t', 'SELECT "with", "select" FROM t'),
    (
        "with_cte",
        "WITH x AS (SELECT 1 AS v) SELECT v FROM x",
        "WITH x AS (SELECT 1 AS v) SELECT v FROM x",
    ),
    ("first_statement_only", "SELECT 1; SELECT 2", "SELECT 1"),
    ("blank_line_inside_sql", "SELECT a\n\nFROM b", "SELECT a\n\nFROM b"),
    # --- DML/DDL pass through (the exec gate reports not_read_only) ----------------------------------
    ("drop_table", "DROP TABLE users", "DROP TABLE users"),
    ("delete", "DELETE FROM t", "DELETE FROM t"),
    ("insert", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"),
    # --- no SQL: empty, so the rules gate reports empty_output -----------------------------------------
    ("empty", "", ""),
    ("whitespace", "  \n\t ", ""),
    ("refusal", "I cannot answer that question.", ""),
    ("prose_only_keywords", "You could select with care and update later.", ""),
    ("only_think", "<think>SELECT a FROM b</think>", ""),
    # --- broken SQL is kept (the exec gate reports syntax_error) ---------------------------------------
    ("truncated_sql_kept_whole", "SELECT a, name FROM t WHERE", "SELECT a, name FROM t WHERE"),
    (
        "truncated_multiline",
        "SELECT a\nFROM t\nWHERE c = 1\nAND",
        "SELECT a\nFROM t\nWHERE c = 1\nAND",
    ),
]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "reply", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_extract_sql(name: str, reply: str, expected: str) -> None:
    assert extract_sql(reply) == expected


def test_none_is_empty() -> None:
    assert extract_sql(None) == ""


def test_parser_never_fails_and_reports_empty() -> None:
    parser = SqlParser()
    assert parser.parse("no sql here") == {"sql": ""}
    assert parser.parse(f"```sql\n{Q}\n```") == {"sql": Q}
    assert SqlParser.outputs == {"sql": "string"}


def test_parser_rejects_unknown_option() -> None:
    with pytest.raises(SpecError, match="dialekt"):
        SqlParser({"dialekt": "sqlite"})


def test_parser_dialect_option() -> None:
    assert SqlParser({"dialect": "postgres"}).parse(f"SQL: {Q}") == {"sql": Q}


@given(st.text(max_size=200))
def test_extract_is_total(text: str) -> None:
    """Any text gives a stripped string without a trailing semicolon."""
    sql = extract_sql(text)
    assert sql == sql.strip()
    assert not sql.endswith(";")


_PIECES = st.sampled_from(
    ["SELECT", "select", "a", "FROM", "t", "WHERE", "with", "With", "'", ";", "\n", "\n\n"]
    + ["<think>", "</think>", "x = 1", "SQL:", "This", "returns", "--", "(", ")", ",", "."]
    + ["DROP TABLE t", "Explanation:", '"', "which", "AS", "Update", "values", "insert into"]
)


@given(st.lists(_PIECES, max_size=25).map(" ".join))
def test_extract_is_idempotent_without_fences(text: str) -> None:
    """Extracting from an extraction changes nothing (fences aside: a labelled fence's
    broken body is kept even when it does not look like SQL on its own)."""
    once = extract_sql(text)
    assert extract_sql(once) == once
