"""``dpo_jsonl``: preference pairs with exactly the fields TRL's ``DPOTrainer`` reads.

Input: the rows of a ``pairs`` node (``_system``, ``_prompt``, ``chosen``, ``rejected``).
Each line holds ``prompt``, ``chosen`` and ``rejected`` and nothing else, so
``load_dataset("json", data_files=...)`` feeds the trainer unchanged (extra fields such as
an id would make TRL's column handling guess).

``style: chat`` (default), TRL's conversational preference format; the trainer applies
the student's chat template, so the system prompt the teacher saw is kept::

    {"prompt": [{"role": "system", "content": ...}, {"role": "user", "content": ...}],
     "chosen": [{"role": "assistant", "content": ...}],
     "rejected": [{"role": "assistant", "content": ...}]}

``style: text``, TRL's standard (plain text) format, for models without a chat template;
the prompt is the user turn only (no system prompt: there is no neutral way to glue it
on, so write it into the template if the student needs it)::

    {"prompt": "Schema: ...\\nQuestion: ...\\nSQL:", "chosen": "SELECT ...", "rejected": "SELECT ..."}

``system`` (chat only): text replacing the teacher's system prompt, or ``false`` to drop
it, as in ``sft_jsonl``.

Pairs of a ``messages:`` node carry its conversation (``_messages``): the chat prompt is
then every turn sent (few-shot examples included), ending with the last user turn; the
text prompt stays the last user turn alone (a conversation has no neutral flat form).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fdbuild import columns as C
from fdbuild.exports.base import Exporter
from fdbuild.exports.sft import chat_messages
from fdbuild.exports.turns import style_option, system_option


class DpoExport(Exporter):
    fmt = "dpo_jsonl"
    known_options = frozenset({"style", "system"})

    @classmethod
    def required_columns(cls, spec: Any) -> list[str]:
        super().required_columns(spec)
        style_option(spec.options)
        system_option(spec.options)
        return [C.PROMPT, "chosen", "rejected"]

    def fields(self, schema: Any) -> list[str]:
        return ["prompt", "chosen", "rejected"]

    def records(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        text = self.options.get("style", "chat") == "text"
        system_opt = self.options.get("system")
        for row in rows:
            chosen, rejected = _text(row.get("chosen")), _text(row.get("rejected"))
            if text:
                yield {"prompt": row.get(C.PROMPT) or "", "chosen": chosen, "rejected": rejected}
            else:
                yield {
                    "prompt": chat_messages(row, None, system_opt),
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
