"""RulesCheck: FastDistill RuleFilter parity (reasons and their order) plus regex rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fdbuild.checks import get_check_class
from fdbuild.checks.rules import RulesCheck
from fdbuild.errors import SpecError


def make(**params: object) -> RulesCheck:
    return RulesCheck(RulesCheck.Params(**params), base_dir=Path("."))


@pytest.mark.parametrize(
    ("params", "text", "reason"),
    [
        ({}, "SELECT 1", "ok"),
        ({}, "", "empty_output"),
        ({}, None, "empty_output"),
        ({}, "   \n\t", "empty_output"),  # fix: FastDistill let whitespace pass
        ({"min_chars": 5}, "abc", "too_short"),
        ({"min_chars": 3}, "abc", "ok"),
        ({"max_chars": 3}, "abcd", "too_long"),
        ({"max_chars": 4}, "abcd", "ok"),
        ({"min_chars": 0}, "", "empty_output"),  # empty is checked first, as in FastDistill
        ({"min_chars": 10, "max_chars": 20}, "x" * 5, "too_short"),
        ({"must_match": [r"(?i)\bselect\b"]}, "SELECT a", "ok"),
        ({"must_match": [r"\bselect\b"]}, "SELECT a", "no_match:0"),
        ({"must_match": ["a", "b", "c"]}, "ab", "no_match:2"),
        ({"must_not_match": [r"(?i)drop\s+table"]}, "DROP TABLE t", "forbidden_match:0"),
        ({"must_not_match": ["x", "<think>"]}, "a <think> b", "forbidden_match:1"),
        # length rules come before regex rules, required before forbidden
        ({"max_chars": 2, "must_match": ["z"]}, "abc", "too_long"),
        ({"must_match": ["z"], "must_not_match": ["a"]}, "abc", "no_match:0"),
        (
            {"must_match": ["^SELECT"], "must_not_match": [";.+"]},
            "SELECT 1; DROP",
            "forbidden_match:0",
        ),
    ],
)
def test_reasons(params: dict, text: str | None, reason: str) -> None:
    assert make(**params).evaluate({"completion": text}) == {"rule_reason": reason}


def test_non_string_is_stringified() -> None:
    assert make(max_chars=3).evaluate({"completion": 12345}) == {"rule_reason": "too_long"}
    assert make().evaluate({"completion": 0}) == {"rule_reason": "ok"}


def test_field_param_and_reads() -> None:
    check = make(field="sql")
    assert check.reads() == ["sql"]
    assert check.evaluate({"sql": "x", "completion": ""}) == {"rule_reason": "ok"}
    assert make().reads() == ["completion"]


def test_invalid_regex_names_the_pattern() -> None:
    with pytest.raises(SpecError, match=r"must_not_match\[1\].*'\(unclosed'"):
        make(must_not_match=["ok", "(unclosed"])


def test_params_are_strict() -> None:
    with pytest.raises(ValidationError):
        RulesCheck.Params(min_char=3)
    with pytest.raises(ValidationError):
        RulesCheck.Params(min_chars=5, max_chars=2)
    with pytest.raises(ValidationError):
        RulesCheck.Params(min_chars=-1)


def test_contract() -> None:
    assert get_check_class("rules") is RulesCheck
    assert RulesCheck.outputs == {"rule_reason": "string"}
    assert RulesCheck.scope == "row"


@given(st.text(max_size=50), st.integers(0, 20), st.integers(0, 40))
def test_reason_agrees_with_lengths(text: str, low: int, extra: int) -> None:
    reason = make(min_chars=low, max_chars=low + extra).evaluate({"completion": text})[
        "rule_reason"
    ]
    if not text.strip():
        assert reason == "empty_output"
    elif len(text) < low:
        assert reason == "too_short"
    elif len(text) > low + extra:
        assert reason == "too_long"
    else:
        assert reason == "ok"
