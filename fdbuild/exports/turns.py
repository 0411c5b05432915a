"""The student's chat turns, shared by the chat exports that let the user reshape them.

The teacher's prompt is not always what the student should be trained on: a step-by-step
teacher is told about the ``### RATIONALE`` / ``### ANSWER`` format, a student learning
one task at a time must not be. So ``mlx_jsonl`` and ``multitask_jsonl`` take:

* ``template``: a ``{column}`` template rendering the user turn from the row (FastDistill's
  ``prompt_template``); default: the prompt the teacher saw (``_prompt``);
* ``system``: the system prompt text, or ``false`` for none; default per format;
* ``system_field``: a column holding a per-row system prompt, falling back to ``system``.

A row of a ``messages:`` node keeps its whole conversation (``_messages``); without a
``template`` option the exports write all its turns, the last user turn as above.

Option errors raise ``ValueError``; the export validator reports them with the target
file, line and key, at load time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fdbuild import columns as C
from fdbuild.spec.template import Template, TemplateSyntaxError, parse_template


def template_option(options: Mapping[str, Any]) -> Template | None:
    text = options.get("template")
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise ValueError("option template: give a prompt template with {column} placeholders")
    try:
        return parse_template(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"option template: {exc}") from None


def string_option(options: Mapping[str, Any], name: str, default: str) -> str:
    value = options.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"option {name}: expected text, got {value!r}")
    return value


STYLES = ("chat", "text")


def style_option(options: Mapping[str, Any]) -> str:
    """``style: chat`` (default, chat messages) or ``style: text`` (plain strings)."""
    style = options.get("style", "chat")
    if style not in STYLES:
        raise ValueError(f"option style: {style!r} is not one of {', '.join(STYLES)}")
    return str(style)


def system_option(options: Mapping[str, Any]) -> None:
    system = options.get("system")
    if system is True or (system is not None and not isinstance(system, (str, bool))):
        raise ValueError("option system: give the system prompt text, or false to leave it out")


def turn_columns(options: Mapping[str, Any], default_user: str = C.PROMPT) -> list[str]:
    """The columns the user and system turns read (validated at load)."""
    system_option(options)
    tpl = template_option(options)
    cols = tpl.columns if tpl is not None else [default_user]
    field = options.get("system_field")
    if field is not None:
        if not isinstance(field, str):
            raise ValueError(f"option system_field: expected a column name, got {field!r}")
        cols.append(field)
    return cols


class Turns:
    """Renders (system, user) for one row under the options above."""

    def __init__(self, options: Mapping[str, Any], system_default: Any) -> None:
        self.template = template_option(options)
        self.system = options.get("system", system_default)
        self.system_field = options.get("system_field")

    def user(self, row: Mapping[str, Any]) -> str:
        if self.template is not None:
            return self.template.render(row)
        return row.get(C.PROMPT) or ""

    def system_text(self, row: Mapping[str, Any]) -> str | None:
        """``system_field``'s value if set, else the option (``None``: the teacher's)."""
        if self.system_field is not None and row.get(self.system_field):
            return str(row[self.system_field])
        if self.system is None:
            return row.get(C.SYSTEM) or None
        return self.system or None

    def messages(self, row: Mapping[str, Any], user: str, assistant: str) -> list[dict[str, str]]:
        """[system?, user, assistant]; for a ``messages:`` row without a ``template``
        option, the conversation's turns with ``user`` as the last user turn."""
        system = self.system_text(row)
        msgs = [{"role": "system", "content": system}] if system else []
        if self.template is None:
            msgs.extend(conversation_turns(row, user))
        else:
            msgs.append({"role": "user", "content": user})
        msgs.append({"role": "assistant", "content": assistant})
        return msgs


def conversation_turns(row: Mapping[str, Any], user: str) -> list[dict[str, str]]:
    """The turns after the system prompt: a ``messages:`` node's conversation as sent
    (``_messages``), its last user turn replaced by ``user`` (the same text unless an
    export prefixes it), or else the one user turn."""
    sent = row.get(C.MESSAGES)
    if not sent:
        return [{"role": "user", "content": user}]
    turns = [
        {"role": str(m["role"]), "content": text(m["content"])}
        for m in sent
        if m["role"] != "system"
    ]
    turns[-1] = {"role": "user", "content": user}
    return turns


def text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
