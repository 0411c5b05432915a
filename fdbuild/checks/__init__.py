"""Gate checks, by name. Built-ins are imported lazily: `fdbuild --version` stays fast."""

from __future__ import annotations

from fdbuild.checks.base import Check
from fdbuild.registry import load

_BUILTIN: dict[str, str] = {
    "rules": "fdbuild.checks.rules:RulesCheck",
    "sql_parse": "fdbuild.checks.sql_parse:SqlParseCheck",
    "sqlite_exec": "fdbuild.checks.sqlite_exec:SqliteExecCheck",
    "judge": "fdbuild.checks.judge:JudgeCheck",
    "dedup": "fdbuild.checks.dedup:DedupCheck",
    "python_tests": "fdbuild.checks.python_tests:PythonTestsCheck",
}


def available_checks() -> list[str]:
    return sorted(_BUILTIN)


def get_check_class(name: str) -> type[Check] | None:
    target = _BUILTIN.get(name)
    return None if target is None else load(target)
