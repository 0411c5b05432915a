"""``sft_jsonl``: chat messages (system, user, assistant) per kept row, as TRL's SFTTrainer
and most chat fine-tuning tools read them.

A ``messages:`` node's row carries its whole conversation (``_messages``): the record
then holds every turn sent (few-shot examples included), then the reply.

Options: ``response`` (column for the assistant turn, default ``completion``; use ``sql``
after ``parse: sql``), ``system`` (text replacing the generation's system prompt, or
``false`` to leave it out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fdbuild import columns as C
from fdbuild.exports.base import Exporter
from fdbuild.exports.turns import conversation_turns


class SftExport(Exporter):
    fmt = "sft_jsonl"
    known_options = frozenset({"response", "system"})

    @classmethod
    def required_columns(cls, spec: Any) -> list[str]:
        super().required_columns(spec)
        return [C.PROMPT, spec.options.get("response", C.COMPLETION)]

    def fields(self, schema: Any) -> list[str]:
        return ["id", "messages"]

    def records(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        response = self.options.get("response", C.COMPLETION)
        system_opt = self.options.get("system")
        for row in rows:
            yield {
                "id": row[C.ID],
                "messages": chat_messages(row, row.get(response) or "", system_opt),
            }


def chat_messages(
    row: dict[str, Any], assistant: str | None, system_opt: Any = None
) -> list[dict[str, str]]:
    """[system?, user, assistant?] from a generated row's rendered prompt; for a
    ``messages:`` node, [system?, every turn sent..., assistant?] (``conversation_turns``)."""
    system = row.get(C.SYSTEM) if system_opt is None else (system_opt or None)
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.extend(conversation_turns(row, row.get(C.PROMPT) or ""))
    if assistant is not None:
        msgs.append({"role": "assistant", "content": assistant})
    return msgs
