"""DedupCheck: exact / normalised keys, keep-first ordering, null handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fdbuild.checks import get_check_class
from fdbuild.checks.dedup import DedupCheck


def run(rows: list[dict[str, Any]], **params: Any) -> list[tuple[bool, str | None]]:
    check = DedupCheck(DedupCheck.Params(**params), base_dir=Path("."))
    rows = [{"_id": f"r{i}", **row} for i, row in enumerate(rows)]
    return [(out["is_duplicate"], out["dup_of"]) for out in check.evaluate_table(rows)]


def texts(*values: Any) -> list[dict[str, Any]]:
    return [{"q": value} for value in values]


def test_exact_keeps_first_occurrence() -> None:
    assert run(texts("a", "b", "a", "a"), field="q") == [
        (False, None),
        (False, None),
        (True, "r0"),
        (True, "r0"),
    ]


def test_exact_is_case_and_space_sensitive() -> None:
    assert run(texts("a b", "A b", "a  b"), field="q") == [(False, None)] * 3


def test_exact_distinguishes_types() -> None:
    assert run(texts(1, "1", 1, [1], [1]), field="q") == [
        (False, None),
        (False, None),
        (True, "r0"),
        (False, None),
        (True, "r3"),
    ]


def test_normalized_text_folds_case_and_whitespace() -> None:
    assert run(
        texts("Hello  World", "hello world\n", " HELLO\tWORLD "), field="q", mode="normalized_text"
    ) == [
        (False, None),
        (True, "r0"),
        (True, "r0"),
    ]


def test_normalized_sql() -> None:
    rows = texts(
        "SELECT name FROM singer WHERE age > 30",
        "select  Name\nfrom SINGER where age>30;",
        "SELECT name FROM singer WHERE age > 31",
        "SELECT 'Ann' FROM t",
        "SELECT 'ann' FROM t",  # string literals keep their case
    )
    assert run(rows, field="q", mode="normalized_sql") == [
        (False, None),
        (True, "r0"),
        (False, None),
        (False, None),
        (False, None),
    ]


def test_normalized_sql_falls_back_to_text_when_unparsable() -> None:
    rows = texts("SELEC broken  query", "selec BROKEN query", "SELECT broken")
    assert run(rows, field="q", mode="normalized_sql") == [
        (False, None),
        (True, "r0"),
        (False, None),
    ]


def test_nulls_and_blanks_are_never_duplicates() -> None:
    """Fix over FastDistill, where None keys collapsed into one row."""
    assert run(texts(None, None, "", "  ", "x"), field="q") == [(False, None)] * 5


def test_order_by_keeps_the_smallest_then_input_order() -> None:
    rows = [
        {"q": "a", "cost": 3},
        {"q": "a", "cost": 1},
        {"q": "a", "cost": 1},
        {"q": "b", "cost": 9},
    ]
    assert run(rows, field="q", order_by="cost") == [
        (True, "r1"),
        (False, None),
        (True, "r1"),
        (False, None),
    ]


def test_order_by_descending_keeps_the_largest() -> None:
    rows = [{"q": "a", "score": 0.2}, {"q": "a", "score": 0.9}, {"q": "a", "score": 0.9}]
    assert run(rows, field="q", order_by="score", descending=True) == [
        (True, "r1"),
        (False, None),
        (True, "r1"),
    ]


def test_rows_without_order_value_rank_last() -> None:
    rows = [{"q": "a", "score": None}, {"q": "a", "score": float("nan")}, {"q": "a", "score": 0.1}]
    for descending in (False, True):
        result = run(rows, field="q", order_by="score", descending=descending)
        assert result == [(True, "r2"), (True, "r2"), (False, None)]


def test_mixed_order_values_still_sort() -> None:
    rows = [{"q": "a", "k": "z"}, {"q": "a", "k": 5}]
    assert run(rows, field="q", order_by="k") == [(True, "r1"), (False, None)]


def test_dup_of_falls_back_to_index_without_id() -> None:
    check = DedupCheck(DedupCheck.Params(field="q"), base_dir=Path("."))
    out = check.evaluate_table([{"q": "a"}, {"q": "a"}])
    assert out[1] == {"is_duplicate": True, "dup_of": "0"}


def test_params_and_contract() -> None:
    assert get_check_class("dedup") is DedupCheck
    assert DedupCheck.scope == "table"
    assert DedupCheck.outputs == {"is_duplicate": "bool", "dup_of": "string"}
    assert DedupCheck(DedupCheck.Params(field="q", order_by="s"), Path(".")).reads() == ["q", "s"]
    with pytest.raises(ValidationError):
        DedupCheck.Params()  # field is required
    with pytest.raises(ValidationError):
        DedupCheck.Params(field="q", mode="fuzzy")
    assert DedupCheck(DedupCheck.Params(field="q"), Path(".")).evaluate_table([]) == []


@given(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=20))
def test_invariants(values: list[str | None]) -> None:
    """One kept row per distinct value; each duplicate points at the kept, earlier row."""
    result = run(texts(*values), field="q")
    kept = [v for v, (dup, _) in zip(values, result, strict=True) if not dup and v is not None]
    assert sorted(kept) == sorted({v for v in values if v is not None})
    for i, (dup, of) in enumerate(result):
        if dup:
            j = int(of[1:])
            assert j < i and values[j] == values[i] and not result[j][0]
        else:
            assert of is None
