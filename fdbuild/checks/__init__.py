"""Gate checks, by name. Built-ins are imported lazily: `fdbuild --version` stays fast.

``get_check_class`` also finds plugins (entry points of ``fdbuild.checks``, ``module:Name``,
``./file.py:Name``): see ``fdbuild.plugins``.
"""

from __future__ import annotations

from pathlib import Path

from fdbuild.checks.base import Check
from fdbuild.plugins import Kind, available, resolve

_BUILTIN: dict[str, str] = {
    "rules": "fdbuild.checks.rules:RulesCheck",
    "sql_parse": "fdbuild.checks.sql_parse:SqlParseCheck",
    "sqlite_exec": "fdbuild.checks.sqlite_exec:SqliteExecCheck",
    "judge": "fdbuild.checks.judge:JudgeCheck",
    "dedup": "fdbuild.checks.dedup:DedupCheck",
    "math_answer": "fdbuild.checks.math_answer:MathAnswerCheck",
    "json_schema": "fdbuild.checks.json_schema:JsonSchemaCheck",
    "python_tests": "fdbuild.checks.python_tests:PythonTestsCheck",
}

KIND = Kind("check", Check, _BUILTIN)


def available_checks() -> list[str]:
    """Built-in checks and installed ``fdbuild.checks`` entry points."""
    return available(KIND)


def get_check_class(name: str, base_dir: Path | None = None) -> type[Check]:
    """The check class ``name`` names; ``fdbuild.plugins.PluginError`` when none can be
    loaded. ``base_dir`` (the target file's folder) anchors ``./file.py:Name``."""
    cls: type[Check] = resolve(KIND, name, base_dir)
    return cls
