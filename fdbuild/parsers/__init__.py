"""Reply parsers for ``generate`` nodes, by the name used in ``parse:``."""

from __future__ import annotations

import importlib

from fdbuild.parsers.base import Parser

_BUILTIN: dict[str, str] = {
    "sql": "fdbuild.parsers.sql:SqlParser",
    "rationale": "fdbuild.parsers.rationale:RationaleParser",
    "json": "fdbuild.parsers.json_:JsonParser",
}


def get_parser_class(name: str) -> type[Parser] | None:
    target = _BUILTIN.get(name)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
