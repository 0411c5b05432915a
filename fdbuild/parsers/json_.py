"""Extracting the first JSON object or array from a teacher's reply (``parse: json``).

Teachers asked for JSON still add thinking, code fences and prose. The parser drops the
thinking, then decodes at each ``{`` or ``[`` in turn (fenced bodies first) and keeps the
first that is a complete JSON value. ``parsed`` holds its canonical text (sorted keys,
no whitespace: ``fdbuild.keys.canonical_json``) so equal answers compare and hash equal.
``NaN`` and ``Infinity`` are not JSON and are refused, as the canonical form refuses them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.keys import canonical_json
from fdbuild.parsers.base import ParseFailure, Parser
from fdbuild.parsers.reasoning import strip_reasoning

# A fence opens and closes at the start of a line: backticks inside a JSON string
# (a key named "```") are not a fence.
_FENCE = re.compile(r"^[ \t]*```[^\n`]*\n(?P<body>.*?)(?:^[ \t]*```|\Z)", re.S | re.M)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def find_json(text: str) -> str:
    """Canonical text of the first JSON object or array in ``text`` (fenced bodies
    first), or raise ``ParseFailure("no_json")``.

    A value that cannot be canonical (a number overflowing to infinity) is skipped.
    """
    body = strip_reasoning(text or "")
    for source in [m.group("body") for m in _FENCE.finditer(body)] + [body]:
        for value in _decode_all(source):
            try:
                return canonical_json(value)
            except ValueError:
                continue
    raise ParseFailure("no_json", "no JSON object or array found")


def _decode_all(text: str) -> Iterator[Any]:
    """Each complete JSON value that starts at a ``{`` or ``[`` in ``text``, in order."""
    for match in re.finditer(r"[{\[]", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        yield value


class JsonParser(Parser):
    """``parse: json``: adds ``parsed``, the canonical JSON text of the first object/array."""

    name = "json"
    version = "2"
    outputs = {"parsed": "string"}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if self.options:
            raise SpecError(f"parse 'json': takes no options, got {sorted(self.options)}")

    def parse(self, text: str) -> dict[str, str]:
        return {"parsed": find_json(text)}
