"""Issue 12: ``messages:`` few-shot conversations reach the teacher turn by turn, and the
chat exports (sft, mlx, dpo prompt, multitask) carry the whole conversation."""

from __future__ import annotations

import json

import pytest

from tests.support.project import ProjectDir, questions_jsonl

TARGET = "targets/conv.yaml"

FEW_SHOT = [
    {"role": "system", "content": "You answer arithmetic questions briefly."},
    {"role": "user", "content": "What is 1 plus 1?"},
    {"role": "assistant", "content": "2"},
    {"role": "user", "content": "What is 3 plus 4?"},
    {"role": "assistant", "content": "7"},
    {"role": "user", "content": "{question}"},
]


def conv_target(host: str, messages: str | None = None) -> str:
    messages = messages or json.dumps(FEW_SHOT)
    return f"""fdbuild: 1
name: conv
teachers:
  main:
    model: qwen2.5-coder:7b
    host: {host}
nodes:
  questions:
    kind: source
    path: data/questions.jsonl
    id: task_id
  answers:
    kind: generate
    input: questions
    teacher: main
    messages: {messages}
    decode: {{temperature: 0.7, seed: 5, num_predict: 100}}
    n: 2
  sft:
    kind: export
    input: answers
    format: sft_jsonl
    path: out/sft.jsonl
  mlx:
    kind: export
    input: answers
    format: mlx_jsonl
    path: out/mlx
    options: {{train_ratio: 1.0}}
  multi:
    kind: export
    input: answers
    format: multitask_jsonl
    path: out/multi.jsonl
    options: {{answer: completion, rationale: completion}}
  pairs:
    kind: pairs
    input: answers
    score: candidate
    response: completion
    require_passed: false
  dpo:
    kind: export
    input: pairs
    format: dpo_jsonl
    path: out/dpo.jsonl
"""


def lines(project: ProjectDir, rel: str) -> list[dict]:
    return [json.loads(line) for line in project.read(rel).splitlines()]


def rendered(question: str) -> list[dict[str, str]]:
    return [*FEW_SHOT[:-1], {"role": "user", "content": question}]


def test_few_shot_turns_reach_the_server_and_every_export(
    project: ProjectDir, ollama_server
) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: conv_target(ollama_server.url),
        }
    )
    project.build(TARGET)
    sent = ollama_server.generation_requests
    assert len(sent) == 6  # 3 questions x n=2
    questions = {f"What is {i} plus {i}?" for i in range(3)}
    for body in sent:
        msgs = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
        assert [m["role"] for m in msgs] == [
            "system",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
        ]
        assert msgs[:-1] == FEW_SHOT[:-1]
        assert msgs[-1]["content"] in questions
    sft = lines(project, "targets/out/sft.jsonl")
    assert len(sft) == 6
    for rec in sft:
        *prompt, reply = rec["messages"]
        assert prompt[:-1] == FEW_SHOT[:-1] and prompt[-1]["content"] in questions
        assert reply["role"] == "assistant" and reply["content"]
    mlx = lines(project, "targets/out/mlx/train.jsonl")
    assert len(mlx) == 6
    assert all(r["messages"][:5] == FEW_SHOT[:5] for r in mlx)
    assert [m["role"] for m in mlx[0]["messages"]][-2:] == ["user", "assistant"]
    multi = lines(project, "targets/out/multi.jsonl")
    for rec in multi:
        roles = [m["role"] for m in rec["messages"]]
        assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
        assert rec["messages"][:4] == FEW_SHOT[1:5]  # system: false by default
        assert rec["messages"][4]["content"].startswith(("[label] ", "[rationale] "))
    dpo = lines(project, "targets/out/dpo.jsonl")
    assert len(dpo) == 3
    for rec in dpo:
        assert rec["prompt"][:-1] == FEW_SHOT[:-1]
        assert rec["prompt"][-1]["role"] == "user"
        assert rec["prompt"][-1]["content"] in questions
        assert rec["chosen"][0]["role"] == "assistant"


def test_editing_one_shot_asks_again_and_a_noop_does_not(
    project: ProjectDir, ollama_server
) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: conv_target(ollama_server.url),
        }
    )
    project.build(TARGET)
    before = ollama_server.generation_count
    project.build(TARGET)
    assert ollama_server.generation_count == before
    edited = [dict(m) for m in FEW_SHOT]
    edited[2]["content"] = "1 + 1 = 2"
    project.gen({TARGET: conv_target(ollama_server.url, json.dumps(edited))})
    project.build(TARGET)
    assert ollama_server.generation_count == before + 6
    sft = lines(project, "targets/out/sft.jsonl")
    assert all(r["messages"][2]["content"] == "1 + 1 = 2" for r in sft)


@pytest.mark.parametrize(
    ("extra", "messages", "needle"),
    [
        ("    template: 'Q: {question}'\n", None, "not both"),
        (
            "",
            '[{role: user, content: "{question}"}, {role: assistant, content: "x"}]',
            "last message must be 'user'",
        ),
        ("", '[{role: user, content: "{nope}"}]', "messages[0].content placeholder"),
        (
            "",
            '[{role: user, content: "a"}, {role: system, content: "b"}, '
            '{role: user, content: "c"}]',
            "system message may only open",
        ),
        ("", '[{role: tool, content: "{question}"}]', "role"),
    ],
)
def test_bad_conversations_fail_at_load_naming_the_line(
    project: ProjectDir, ollama_server, extra: str, messages: str | None, needle: str
) -> None:
    text = conv_target(ollama_server.url, messages)
    text = text.replace("    decode:", extra + "    decode:", 1)
    project.gen({"targets/data/questions.jsonl": questions_jsonl(2), TARGET: text})
    res = project.build(TARGET, expect=2)
    assert needle in res.stderr
    assert "conv.yaml:" in res.stderr
    assert ollama_server.generation_count == 0
