"""parse: python: which code a reply yields, and the reasons when it yields none."""

from __future__ import annotations

import pytest

from fdbuild.errors import SpecError
from fdbuild.parsers import get_parser_class
from fdbuild.parsers.base import ParseFailure
from fdbuild.parsers.python_ import PythonParser, extract_python

SOLUTION = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (f"```python\n{SOLUTION}```", SOLUTION),
        (f"Here you go:\n\n```py\n{SOLUTION}```\nIt adds.", SOLUTION),
        (f"```\n{SOLUTION}```", SOLUTION),  # unlabelled fence
        (f"```Python3\n{SOLUTION}```", SOLUTION),
        (f"~~~python\n{SOLUTION}~~~", SOLUTION),
        (SOLUTION, SOLUTION),  # a bare reply that parses
        (f"<think>maybe ```python\nx = (\n```</think>\n```python\n{SOLUTION}```", SOLUTION),
        (f"```bash\npip install nothing\n```\n```python\n{SOLUTION}```", SOLUTION),
        (f"```python\n{SOLUTION}", SOLUTION),  # cut off before the closing fence
    ],
)
def test_extracts_the_code(reply: str, code: str) -> None:
    assert extract_python(reply) == code


def test_a_longer_fence_holds_a_shorter_one() -> None:
    reply = '````python\ndoc = """\n```\nexample\n```\n"""\n````'
    assert extract_python(reply) == 'doc = """\n```\nexample\n```\n"""\n'


def test_longest_is_the_default_and_last_is_an_option() -> None:
    reply = f"```python\n{SOLUTION}```\nUsage:\n```python\nprint(add(1, 2))\n```"
    assert extract_python(reply) == SOLUTION
    assert PythonParser({"block": "last"}).parse(reply) == {"code": "print(add(1, 2))\n"}
    assert PythonParser().parse(reply) == {"code": SOLUTION}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "no_code"),
        ("   \n", "no_code"),
        ("You should write a function that adds two numbers.", "no_code"),
        ("```bash\nls -la\n```", "no_code"),
        ("```python\n\n```", "no_code"),
        ("<think>only thinking, cut off", "no_code"),
        ("```python\ndef add(a, b:\n    return a + b\n```", "syntax_error: line 1"),
        ("```python\nx = 1\ny = (\n```", "syntax_error: line 2"),
        ("```python\nx = '\0'\n```", "syntax_error: nul_byte"),
    ],
)
def test_reasons_for_what_it_cannot_find(reply: str, reason: str) -> None:
    with pytest.raises(ParseFailure) as err:
        extract_python(reply)
    assert err.value.reason == reason


def test_options_are_checked() -> None:
    with pytest.raises(SpecError, match="block must be one of"):
        PythonParser({"block": "first"})
    with pytest.raises(SpecError, match="unknown option"):
        PythonParser({"dialect": "py2"})


def test_registered_as_a_builtin() -> None:
    assert get_parser_class("python") is PythonParser
    assert PythonParser.outputs == {"code": "string"}
