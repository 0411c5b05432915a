"""Prompt templates: plain ``{column}`` placeholders, nothing else.

``str.format`` would allow ``{x.__class__}`` and ``{x[0]}`` (attribute and index access
on row values, a template-injection hole), so templates are parsed once and rendered
by concatenation. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLAIN = re.compile(r"^[^.\[\]{}!:]+$")


class TemplateSyntaxError(ValueError):
    """A template uses something other than plain ``{column}`` placeholders."""


@dataclass(frozen=True)
class Template:
    parts: tuple[tuple[str, str | None], ...]
    """(literal text, column name or None) pairs, as string.Formatter.parse gives them."""

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for _, name in self.parts:
            if name is not None:
                seen.setdefault(name, None)
        return list(seen)

    def render(self, row: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                out.append(format_value(row.get(name)))
        return "".join(out)


def format_value(value: Any) -> str:
    """How a row value appears in a prompt: text as is, None empty, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def parse_template(text: str) -> Template:
    try:
        raw = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateSyntaxError(
            f"malformed braces ({exc}); write {{{{ and }}}} for literal braces"
        ) from exc
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in raw:
        if field is None:
            parts.append((literal, None))
            continue
        if field == "" or field.isdigit():
            raise TemplateSyntaxError(
                "empty or positional placeholder '{}'; name a column: {column}"
            )
        if not _PLAIN.match(field) or field != field.strip():
            raise TemplateSyntaxError(
                f"placeholder '{{{field}}}' is not a plain column name "
                "(attribute and index access are not allowed)"
            )
        if spec or conversion:
            raise TemplateSyntaxError(
                f"placeholder '{{{field}}}' has a conversion or format spec; only {{column}} is allowed"
            )
        parts.append((literal, field))
    return Template(tuple(parts))
