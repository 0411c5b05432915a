"""Splitting a reply into rationale and answer (``parse: rationale``).

Distilling Step-by-Step asks the teacher for a short rationale and the answer under two
delimiters (default ``### RATIONALE`` / ``### ANSWER``) and trains on both. Teachers
vary the markup, so a delimiter matches at a line start whatever its case, its number
of ``#`` (none included, then it needs a ``:`` or a line of its own), ``**bold**`` and a
trailing ``:``; its section runs to the next delimiter or the end. A code fence around
the answer is removed. An SQL answer is kept as written: extracting the query is a later
step's job (``extract_sql``), so this parser stays format-agnostic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.parsers.base import ParseFailure, Parser
from fdbuild.parsers.reasoning import strip_reasoning

_OPTIONS = {"rationale_delimiter": "### RATIONALE", "answer_delimiter": "### ANSWER"}


def delimiter_pattern(delimiter: str) -> re.Pattern[str]:
    """A tolerant line-start pattern for ``delimiter``: its label, in any case, with
    optional ``#`` marks, ``**`` and ``:``. Without ``#`` the label must end its line or
    be followed by ``:``, so a sentence that starts with "Answer ..." is not a delimiter."""
    label = delimiter.strip().lstrip("#").strip().rstrip(":").strip()
    if not label:
        raise SpecError(f"parse 'rationale': delimiter {delimiter!r} has no label")
    words = r"[ \t]+".join(re.escape(word) for word in label.split())
    loose = rf"\**[ \t]*{words}[ \t]*:?[ \t]*\**[ \t]*:?[ \t]*#*"
    colon = rf"\**[ \t]*{words}[ \t]*(?::[ \t]*\**|\**[ \t]*:)"
    return re.compile(rf"^[ \t]*(?:#+[ \t]*{loose}|{colon}|{loose}(?=[ \t]*$))[ \t]*", re.I | re.M)


def strip_fence(text: str) -> str:
    """The body of a code fence that opens the text (to its closing fence, or the end
    when the reply was cut off); a lone trailing fence is dropped too."""
    text = text.strip()
    if text.startswith("```"):
        line_end = text.find("\n")
        if line_end == -1:
            return text.strip("`").strip()
        close = text.find("```", line_end)
        return text[line_end + 1 : close if close != -1 else len(text)].strip()
    return text[:-3].rstrip() if text.endswith("```") else text


class RationaleParser(Parser):
    """``parse: rationale``: adds ``rationale`` and ``answer``."""

    name = "rationale"
    version = "1"
    outputs = {"rationale": "string", "answer": "string"}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - set(_OPTIONS))
        if unknown:
            raise SpecError(
                f"parse 'rationale': unknown option(s) {unknown}; known: {sorted(_OPTIONS)}"
            )
        settings = {**_OPTIONS, **self.options}
        self._rationale = delimiter_pattern(str(settings["rationale_delimiter"]))
        self._answer = delimiter_pattern(str(settings["answer_delimiter"]))

    def parse(self, text: str) -> dict[str, Any]:
        body = strip_reasoning(text or "")
        rationale = self._rationale.search(body)
        answer = self._answer.search(body)
        bounds = sorted(m.start() for m in (rationale, answer) if m) + [len(body)]
        rationale_text = _section(body, rationale, bounds, "missing_rationale")
        answer_text = strip_fence(_section(body, answer, bounds, "missing_answer"))
        if not answer_text:
            raise ParseFailure("missing_answer", "the answer section is empty")
        return {"rationale": rationale_text, "answer": answer_text}


def _section(body: str, match: re.Match[str] | None, bounds: list[int], reason: str) -> str:
    """The text after a delimiter up to the next delimiter; failure if absent or empty."""
    if match is None:
        raise ParseFailure(reason, "delimiter not found")
    end = min(b for b in bounds if b > match.start())
    text = body[match.end() : end].strip()
    if not text:
        raise ParseFailure(reason, "the section is empty")
    return text
