"""Reply parsers for ``generate`` nodes, by the name used in ``parse:``."""

from __future__ import annotations

from fdbuild.parsers.base import Parser
from fdbuild.registry import load

_BUILTIN: dict[str, str] = {
    "sql": "fdbuild.parsers.sql:SqlParser",
    "rationale": "fdbuild.parsers.rationale:RationaleParser",
    "json": "fdbuild.parsers.json_:JsonParser",
    "python": "fdbuild.parsers.python_:PythonParser",
}


def get_parser_class(name: str) -> type[Parser] | None:
    target = _BUILTIN.get(name)
    return None if target is None else load(target)
