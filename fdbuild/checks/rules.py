"""The ``rules`` gate: cheap length and format rules on one text column.

Parity with FastDistill's ``RuleFilter`` (same reasons, same order: ``empty_output``,
``too_short``, ``too_long``, else ``ok``; lengths in characters; a non-string value is
``str()``-ed, ``None`` is empty), plus the format rules its plan listed but never had:
``must_match`` (every regex must be found) and ``must_not_match`` (no regex may be
found), reported as ``no_match:<i>`` / ``forbidden_match:<i>`` with the rule's index.

One deliberate fix: whitespace-only text is ``empty_output``. FastDistill let it pass,
so a teacher reply of ``"\\n"`` counted as a kept answer.

Regexes are compiled once, at construction, so a bad pattern fails the target file's
load (``SpecError`` naming the pattern) instead of failing every row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, model_validator

from fdbuild.checks.base import Check, CheckParams
from fdbuild.errors import SpecError


class RulesParams(CheckParams):
    field: str = Field("completion", description="Column holding the text to check.")
    min_chars: int = Field(1, ge=0, description="Shorter text is 'too_short'.")
    max_chars: int | None = Field(None, ge=0, description="Longer text is 'too_long'.")
    must_match: tuple[str, ...] = Field((), description="Regexes that must all be found.")
    must_not_match: tuple[str, ...] = Field((), description="Regexes none of which may be found.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> RulesParams:
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) < min_chars ({self.min_chars})")
        return self


class RulesCheck(Check[RulesParams]):
    """Annotates ``rule_reason``: the first rule the text breaks, or ``ok``."""

    name = "rules"
    version = "1"
    Params = RulesParams
    outputs = {"rule_reason": "string"}

    def __init__(self, params: RulesParams, base_dir: Any) -> None:
        super().__init__(params, base_dir)
        self._required = _compile_all(params.must_match, "must_match")
        self._forbidden = _compile_all(params.must_not_match, "must_not_match")

    def reads(self) -> Sequence[str]:
        return [self.params.field]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"rule_reason": self.reason(row.get(self.params.field))}

    def reason(self, value: Any) -> str:
        """The first broken rule, in FastDistill's order, then the regex rules."""
        text = "" if value is None else value if isinstance(value, str) else str(value)
        if not text.strip():
            return "empty_output"
        if len(text) < self.params.min_chars:
            return "too_short"
        if self.params.max_chars is not None and len(text) > self.params.max_chars:
            return "too_long"
        for i, pattern in enumerate(self._required):
            if not pattern.search(text):
                return f"no_match:{i}"
        for i, pattern in enumerate(self._forbidden):
            if pattern.search(text):
                return f"forbidden_match:{i}"
        return "ok"


def _compile_all(patterns: Sequence[str], key: str) -> list[re.Pattern[str]]:
    """Compile each pattern, or raise SpecError naming the key, index and pattern."""
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise SpecError(
                f"check 'rules': invalid regex in {key}[{i}] {pattern!r}: {exc}"
            ) from exc
    return compiled
