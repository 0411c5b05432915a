"""A project-local check (``check: ./checks/word_count.py:WordCount``), docs/plugins.md.

Its evaluations are keyed by ``version`` and by the digest of this file's source:
editing this file re-evaluates the rows of the gates that use it, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams


class WordCountParams(CheckParams):
    field: str = Field("completion", description="Column whose words are counted.")
    max_words: int = Field(60, ge=1, description="More words is 'too_many_words'.")


class WordCount(Check[WordCountParams]):
    """Counts whitespace-separated words."""

    version = "1"
    Params = WordCountParams
    outputs = {"words": "int64", "words_reason": "string"}

    def reads(self) -> Sequence[str]:
        return [self.params.field]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        words = len(str(row.get(self.params.field) or "").split())
        reason = "ok" if words <= self.params.max_words else "too_many_words"
        return {"words": words, "words_reason": reason}
