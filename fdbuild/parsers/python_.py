"""Extracting Python code from a teacher's reply (``parse: python``).

Code teachers answer with prose around one or more fenced blocks, sometimes with a bare
program and sometimes with nothing runnable at all. The parser adds one column, ``code``:

* fenced blocks labelled ``python``, ``py``, ``python3`` or unlabelled (```` ``` ````) are
  the candidates; blocks in another language (```` ```bash ````, ```` ```text ````) are not;
  an unclosed fence runs to the end of the reply (the reply was cut off);
* ``parse_options: {block: longest}`` (the default) takes the longest candidate, so a
  one-line usage example after the solution does not win; ``block: last`` takes the last
  one (teachers that revise their answer put the final version last);
* a reply without fences is taken whole when it parses as Python (``ast.parse``);
* thinking (``<think>...</think>``) is removed first, as in every parser.

What it cannot find is a recorded reason, never a retry: ``no_code`` (an empty reply, or
prose with no fence that does not parse as Python) and ``syntax_error: line N`` (the chosen
code does not parse; N is the line inside the extracted code).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.parsers.base import ParseFailure, Parser
from fdbuild.parsers.reasoning import strip_reasoning

_PYTHON_LABELS = frozenset({"", "python", "py", "python3", "py3"})
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*$", re.M)
_BLOCK_CHOICES = ("longest", "last")


class PythonParser(Parser):
    """``parse: python``: adds ``code``; no code or unparsable code is a ParseFailure."""

    name = "python"
    version = "1"
    outputs = {"code": "string"}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - {"block"})
        if unknown:
            raise SpecError(f"parse 'python': unknown option(s) {unknown}; known: ['block']")
        self.block = str(self.options.get("block", "longest"))
        if self.block not in _BLOCK_CHOICES:
            raise SpecError(
                f"parse 'python': block must be one of {list(_BLOCK_CHOICES)}, not {self.block!r}"
            )

    def parse(self, text: str) -> dict[str, Any]:
        return {"code": extract_python(text, self.block)}


def extract_python(text: str | None, block: str = "longest") -> str:
    """The code in a reply (see the module docstring), or raise ParseFailure."""
    body = strip_reasoning(text or "")
    if not body.strip():
        raise ParseFailure("no_code", "empty reply")
    blocks = [b for b in fenced_python_blocks(body) if b.strip()]
    if blocks:
        code = blocks[-1] if block == "last" else max(blocks, key=len)
    elif _has_fence(body):
        raise ParseFailure("no_code", "no python code block")
    else:
        code = body
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            raise ParseFailure("no_code", "no code block, and the reply is not Python") from None
    code = code.strip("\n").rstrip() + "\n"
    _check_syntax(code)
    return code


def fenced_python_blocks(text: str) -> Iterator[str]:
    """The body of each fenced block labelled Python or unlabelled, in reply order."""
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return
        marker, label = opening.group(1), opening.group(2).lower()
        start = opening.end() + 1
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.M)
        close = closing.search(text, start)
        end = len(text) if close is None else close.start()
        if label in _PYTHON_LABELS:
            yield text[start:end] if start <= len(text) else ""
        if close is None:
            return
        pos = close.end()


def _has_fence(text: str) -> bool:
    return _FENCE.search(text) is not None


def _check_syntax(code: str) -> None:
    if "\0" in code:
        raise ParseFailure("syntax_error: nul_byte")
    try:
        ast.parse(code)
    except SyntaxError as exc:
        raise ParseFailure(f"syntax_error: line {exc.lineno or 0}") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        raise ParseFailure(f"syntax_error: {type(exc).__name__}") from None
