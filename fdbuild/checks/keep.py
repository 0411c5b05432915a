"""``keep`` rules: which evaluated rows pass a gate. Applied fresh every build, never
cached, so changing a threshold costs no teacher call and no re-evaluation.

A rule maps an evaluation field to a literal (equality) or to conditions:
``{min: x}``, ``{max: x}``, ``{in: [...]}``, ``{not: x}``. All rules must hold.
A missing or null value never passes a condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
_OPS = {"min", "max", "in", "not", "equals"}


def compile_keep(rules: Mapping[str, Any]) -> Predicate:
    """Raises ValueError (with the field named) for a malformed rule."""
    tests = [_compile_one(field, rule) for field, rule in rules.items()]

    def predicate(evaluation: Mapping[str, Any]) -> bool:
        return all(test(evaluation) for test in tests)

    return predicate


def _compile_one(field: str, rule: Any) -> Predicate:
    if not isinstance(rule, Mapping):
        return lambda ev: ev.get(field) is not None and ev.get(field) == rule
    unknown = set(rule) - _OPS
    if unknown or not rule:
        raise ValueError(
            f"keep rule for '{field}' has unknown condition(s) "
            f"{', '.join(sorted(unknown)) or '(none)'}; use min, max, in, not, equals"
        )
    checks: list[Callable[[Any], bool]] = []
    if "min" in rule:
        lo = _number(field, "min", rule["min"])
        checks.append(lambda v: _is_num(v) and v >= lo)
    if "max" in rule:
        hi = _number(field, "max", rule["max"])
        checks.append(lambda v: _is_num(v) and v <= hi)
    if "in" in rule:
        allowed = rule["in"]
        if not isinstance(allowed, list):
            raise ValueError(f"keep rule for '{field}': 'in' takes a list")
        checks.append(lambda v: v in allowed)
    if "not" in rule:
        banned = rule["not"]
        checks.append(lambda v: v != banned)
    if "equals" in rule:
        want = rule["equals"]
        checks.append(lambda v: v == want)

    def test(ev: Mapping[str, Any]) -> bool:
        value = ev.get(field)
        return value is not None and all(c(value) for c in checks)

    return test


def _number(field: str, op: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"keep rule for '{field}': '{op}' takes a number, got {value!r}")
    return value


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
