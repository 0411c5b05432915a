"""Reply parsers for ``generate`` nodes, by the name used in ``parse:``.

``get_parser_class`` also finds plugins (entry points of ``fdbuild.parsers``,
``module:Name``, ``./file.py:Name``): see ``fdbuild.plugins``.
"""

from __future__ import annotations

from pathlib import Path

from fdbuild.parsers.base import Parser
from fdbuild.plugins import Kind, resolve

_BUILTIN: dict[str, str] = {
    "sql": "fdbuild.parsers.sql:SqlParser",
    "rationale": "fdbuild.parsers.rationale:RationaleParser",
    "json": "fdbuild.parsers.json_:JsonParser",
    "python": "fdbuild.parsers.python_:PythonParser",
}

KIND = Kind("parser", Parser, _BUILTIN)


def get_parser_class(name: str, base_dir: Path | None = None) -> type[Parser]:
    """The parser class ``name`` names; ``fdbuild.plugins.PluginError`` when none can be
    loaded. ``base_dir`` (the target file's folder) anchors ``./file.py:Name``."""
    cls: type[Parser] = resolve(KIND, name, base_dir)
    return cls
