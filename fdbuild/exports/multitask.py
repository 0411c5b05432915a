"""``multitask_jsonl``: Distilling Step-by-Step's multi-task training data.

The paper (Hsieh et al., 2023) trains the student on two tasks over the same input, told
apart by a task prefix on the input: ``[label]`` -> the answer, ``[rationale]`` -> the
teacher's rationale. The rationale is only a training signal: at inference the student
is asked for the label alone, so it costs nothing at test time. Per kept row this export
writes two examples, the answer task first::

    {"id": "<row id>/answer", "task": "answer",
     "messages": [{"role": "user", "content": "[label] Schema: ...\\nQuestion: ..."},
                  {"role": "assistant", "content": "SELECT ..."}]}
    {"id": "<row id>/rationale", "task": "rationale",
     "messages": [{"role": "user", "content": "[rationale] Schema: ...\\nQuestion: ..."},
                  {"role": "assistant", "content": "The question asks for ..."}]}

``style: text`` writes ``{"id", "task", "prompt", "completion"}`` instead (TRL's
prompt-completion format, closest to the paper's seq2seq T5 setup).

Options: ``answer`` / ``rationale`` (columns, default ``answer`` / ``rationale`` as
``parse: rationale`` names them), ``answer_prefix`` / ``rationale_prefix`` (default
``"[label] "`` / ``"[rationale] "``, the paper's), ``template`` (the user turn before the
prefix; default the prompt the teacher saw), ``system`` (default ``false``: the teacher's
system prompt describes the two-section reply format, which neither task's target
follows; give text to add one), ``system_field``. A row whose rationale is empty yields
only its answer example (counted in the manifest), since an empty target teaches nothing.

A row of a ``messages:`` node (without ``template``) keeps its conversation: the earlier
turns (few-shot examples) as sent, the task prefix on the last user turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fdbuild import columns as C
from fdbuild.exports.base import Exporter
from fdbuild.exports.turns import Turns, string_option, style_option, text, turn_columns

PREFIXES = {"answer": "[label] ", "rationale": "[rationale] "}


class MultitaskExport(Exporter):
    fmt = "multitask_jsonl"
    known_options = frozenset(
        {
            "answer",
            "rationale",
            "answer_prefix",
            "rationale_prefix",
            "template",
            "system",
            "system_field",
            "style",
        }
    )

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.counts = {"answer": 0, "rationale": 0}

    @classmethod
    def required_columns(cls, spec: Any) -> list[str]:
        super().required_columns(spec)
        style_option(spec.options)
        for task, prefix in PREFIXES.items():
            string_option(spec.options, f"{task}_prefix", prefix)
        cols = turn_columns(spec.options)
        return cols + [string_option(spec.options, task, task) for task in PREFIXES]

    def fields(self, schema: Any) -> list[str]:
        if self.options.get("style", "chat") == "text":
            return ["id", "task", "prompt", "completion"]
        return ["id", "task", "messages"]

    def manifest_extra(self) -> dict[str, Any]:
        return {"tasks": dict(self.counts)}

    def records(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        turns = Turns(self.options, system_default=False)
        as_text = self.options.get("style", "chat") == "text"
        self.counts = {task: 0 for task in PREFIXES}
        for row in rows:
            user = turns.user(row)
            for task, default_prefix in PREFIXES.items():
                target = text(row.get(self.options.get(task, task))).strip()
                if not target:
                    continue
                prompt = self.options.get(f"{task}_prefix", default_prefix) + user
                record: dict[str, Any] = {"id": f"{row[C.ID]}/{task}", "task": task}
                if as_text:
                    record.update(prompt=prompt, completion=target)
                else:
                    record["messages"] = turns.messages(row, prompt, target)
                self.counts[task] += 1
                yield record
