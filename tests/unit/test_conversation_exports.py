"""What the chat exports write for a row of a ``messages:`` node (``_messages``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fdbuild import columns as C
from fdbuild.exports.dpo import DpoExport
from fdbuild.exports.multitask import MultitaskExport
from fdbuild.exports.sft import SftExport

TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "1+1?"},
    {"role": "assistant", "content": "2"},
    {"role": "user", "content": "2+2?"},
]
ROW: dict[str, Any] = {
    C.ID: "q1/0",
    C.SYSTEM: "Be brief.",
    C.PROMPT: "2+2?",
    C.MESSAGES: TURNS,
    "completion": "4",
    "question": "2+2?",
    "chosen": "4",
    "rejected": "5",
    "answer": "4",
    "rationale": "two and two",
}


def spec(fmt: str, **options: Any) -> Any:
    return SimpleNamespace(format=fmt, options=options, columns=None, path="out/x.jsonl")


def test_sft_writes_every_turn_then_the_reply() -> None:
    (rec,) = SftExport(spec("sft_jsonl")).records([ROW])
    assert rec["messages"] == [*TURNS, {"role": "assistant", "content": "4"}]
    (nosys,) = SftExport(spec("sft_jsonl", system=False)).records([ROW])
    assert nosys["messages"] == [*TURNS[1:], {"role": "assistant", "content": "4"}]
    (other,) = SftExport(spec("sft_jsonl", system="New.")).records([ROW])
    assert other["messages"][0] == {"role": "system", "content": "New."}
    assert other["messages"][1:4] == TURNS[1:]


def test_a_row_without_a_conversation_is_unchanged() -> None:
    row = {k: v for k, v in ROW.items() if k != C.MESSAGES}
    (rec,) = SftExport(spec("sft_jsonl")).records([row])
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]


def test_dpo_prompt_is_the_conversation() -> None:
    (chat,) = DpoExport(spec("dpo_jsonl")).records([ROW])
    assert chat["prompt"] == TURNS
    (text,) = DpoExport(spec("dpo_jsonl", style="text")).records([ROW])
    assert text["prompt"] == "2+2?"


def test_multitask_prefixes_the_last_user_turn_and_template_replaces_the_turns() -> None:
    answer, rationale = MultitaskExport(spec("multitask_jsonl")).records([ROW])
    assert answer["messages"][:3] == TURNS[1:3] + [{"role": "user", "content": "[label] 2+2?"}]
    assert rationale["messages"][2]["content"] == "[rationale] 2+2?"
    answer, _ = MultitaskExport(spec("multitask_jsonl", template="Q: {question}")).records([ROW])
    assert answer["messages"] == [
        {"role": "user", "content": "[label] Q: 2+2?"},
        {"role": "assistant", "content": "4"},
    ]
