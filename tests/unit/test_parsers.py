"""JsonParser, RationaleParser and the shared reasoning stripper."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdbuild.errors import SpecError
from fdbuild.parsers import get_parser_class
from fdbuild.parsers.base import ParseFailure
from fdbuild.parsers.json_ import JsonParser
from fdbuild.parsers.rationale import RationaleParser
from fdbuild.parsers.reasoning import strip_reasoning

# --- reasoning -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>x</think>answer", "answer"),
        ("<Thinking>x</Thinking>answer", "answer"),
        ("a<reasoning>x</reasoning>b<thought>y</thought>c", "abc"),
        ("prompt-opened thinking</think>answer", "answer"),
        ("answer<think>cut off mid-thought", "answer"),
        ("no tags at all", "no tags at all"),
    ],
)
def test_strip_reasoning(text: str, expected: str) -> None:
    assert strip_reasoning(text) == expected


# --- json ------------------------------------------------------------------------------

JSON_CASES = [
    ('{"b": 1, "a": 2}', '{"a":2,"b":1}'),
    ('Sure! {"score": 0.8, "why": "ok"} Done.', '{"score":0.8,"why":"ok"}'),
    ('```json\n{"a": [1, 2]}\n```', '{"a":[1,2]}'),
    ('```\n[{"x": null}]\n```\ntrailing', '[{"x":null}]'),
    ("see [note] then [1, 2]", "[1,2]"),
    ('<think>{"draft": true}</think>{"final": true}', '{"final":true}'),
    ('{"unicode": "é"}', '{"unicode":"é"}'),
    (
        'prefix {"nested": {"deep": {"k": [true, false]}}} suffix',
        '{"nested":{"deep":{"k":[true,false]}}}',
    ),
    ('first {"a": 1} second {"b": 2}', '{"a":1}'),
    ('{"a": 1e999} then [3]', "[3]"),
    ('```json\n{"broken": \n```\n{"ok": 1}', '{"ok":1}'),
]


@pytest.mark.parametrize(("text", "expected"), JSON_CASES)
def test_json_parser_finds_first_value(text: str, expected: str) -> None:
    assert JsonParser().parse(text) == {"parsed": expected}


@pytest.mark.parametrize(
    "text", ["", "no json here", "42", '"just a string"', '{"a": NaN}', "{'a': 1}"]
)
def test_json_parser_no_json(text: str) -> None:
    with pytest.raises(ParseFailure) as info:
        JsonParser().parse(text)
    assert info.value.reason == "no_json"


def test_json_parser_takes_no_options() -> None:
    with pytest.raises(SpecError):
        JsonParser({"strict": True})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=4), _JSON, max_size=4),
    st.text(alphabet="abc .:\n", max_size=20),
)
def test_json_round_trip_in_prose(value: dict, prose: str) -> None:
    """Any object embedded after plain prose comes back equal, in canonical form."""
    parsed = JsonParser().parse(f"{prose}{json.dumps(value, indent=1)} thanks")["parsed"]
    assert json.loads(parsed) == value
    assert parsed == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- rationale -----------------------------------------------------------------------------

RATIONALE_CASES = [
    ("### RATIONALE\nBecause x.\n### ANSWER\n42", "Because x.", "42"),
    ("### rationale\nBecause x.\n\n### answer\n42\n", "Because x.", "42"),
    ("## Rationale:\nBecause x.\n#### Answer:\n42", "Because x.", "42"),
    ("  ###   RATIONALE  \n  Because x.  \n  ###  ANSWER  \n  42  ", "Because x.", "42"),
    ("**Rationale:** Because x.\n**Answer:** 42", "Because x.", "42"),
    ("RATIONALE\nBecause x.\nANSWER\n42", "Because x.", "42"),
    ("Rationale: Because x.\nAnswer: 42", "Because x.", "42"),
    ("### RATIONALE ###\nBecause x.\n### ANSWER ###\n42", "Because x.", "42"),
    ("### ANSWER\n42\n### RATIONALE\nBecause x.", "Because x.", "42"),
    ("<think>draft</think>### RATIONALE\nBecause x.\n### ANSWER\n42", "Because x.", "42"),
    (
        "### RATIONALE\nJoin on id.\n### ANSWER\n```sql\nSELECT a FROM t;\n```\n",
        "Join on id.",
        "SELECT a FROM t;",
    ),
    ("### RATIONALE\nr\n### ANSWER\nSELECT a FROM t\n```", "r", "SELECT a FROM t"),
    ("### RATIONALE\nr\n### ANSWER\n```\nSELECT 1", "r", "SELECT 1"),
    (
        "### RATIONALE\nAnswer this carefully.\nstep two\n### ANSWER\n7",
        "Answer this carefully.\nstep two",
        "7",
    ),
]


@pytest.mark.parametrize(("text", "rationale", "answer"), RATIONALE_CASES)
def test_rationale_parser(text: str, rationale: str, answer: str) -> None:
    assert RationaleParser().parse(text) == {"rationale": rationale, "answer": answer}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("### ANSWER\n42", "missing_rationale"),
        ("### RATIONALE\nBecause x.", "missing_answer"),
        ("just 42", "missing_rationale"),
        ("### RATIONALE\n\n### ANSWER\n42", "missing_rationale"),
        ("### RATIONALE\nBecause.\n### ANSWER\n", "missing_answer"),
        ("### RATIONALE\nBecause.\n### ANSWER\n```sql\n```", "missing_answer"),
        ("<think>### RATIONALE\nr\n### ANSWER\n1", "missing_rationale"),
    ],
)
def test_rationale_parser_failures(text: str, reason: str) -> None:
    with pytest.raises(ParseFailure) as info:
        RationaleParser().parse(text)
    assert info.value.reason == reason


def test_rationale_custom_delimiters() -> None:
    parser = RationaleParser(
        {"rationale_delimiter": "## WHY", "answer_delimiter": "## FINAL ANSWER"}
    )
    text = "## why\nbecause\n## Final  Answer\nyes"
    assert parser.parse(text) == {"rationale": "because", "answer": "yes"}


def test_rationale_prose_is_not_a_delimiter() -> None:
    """Without '#', the label needs a ':' or a line of its own."""
    with pytest.raises(ParseFailure) as info:
        RationaleParser().parse("Rationale is simple\nAnswer is 42")
    assert info.value.reason == "missing_rationale"


def test_rationale_rejects_unknown_option() -> None:
    with pytest.raises(SpecError, match="answer_delim"):
        RationaleParser({"answer_delim": "### A"})


def test_rationale_rejects_empty_label() -> None:
    with pytest.raises(SpecError):
        RationaleParser({"rationale_delimiter": "###"})


def test_registry_names() -> None:
    for name, cls in [("json", JsonParser), ("rationale", RationaleParser)]:
        assert get_parser_class(name) is cls
        assert cls.name == name
    assert RationaleParser.outputs == {"rationale": "string", "answer": "string"}
    assert JsonParser.outputs == {"parsed": "string"}
