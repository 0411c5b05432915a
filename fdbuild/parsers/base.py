"""The parse contract for ``generate`` nodes (``parse: none | sql | rationale | json``).

A parser turns the teacher's raw ``completion`` into extra columns. It is pure and
deterministic, so a parse failure is *data* (a ``parse_error`` column with a reason),
never a retry: asking the teacher again would return the same cached text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar


class ParseFailure(Exception):
    """The reply does not have the expected shape; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Parser(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    outputs: ClassVar[Mapping[str, str]]
    """Columns added, name -> Arrow type. On failure they are null and parse_error is set."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    @abstractmethod
    def parse(self, text: str) -> dict[str, Any]:
        """Return the output columns, or raise ParseFailure."""
