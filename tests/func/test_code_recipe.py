"""targets/code_sft.yaml against the test server: the teacher's code is extracted, run
against each task's tests in the sandbox, and only code that passes all of them is
exported; a rebuild asks nobody and runs no test again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.code_replies import CODE_TASKS, expected_outcome
from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import recipe_project, recipe_responder

MODEL = "qwen2.5-coder:7b"
SEED = 7  # targets/code_sft.yaml decode seed


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server(
        {DEFAULT_MODEL: DEFAULT_DIGEST, MODEL: "c" * 64}, responder=recipe_responder
    )
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(240)
def test_code_sft_keeps_exactly_the_code_that_passes_its_tests(project: ProjectDir, server) -> None:
    (target,) = recipe_project(project, ["code_sft"])
    outcomes = {t["task_id"]: expected_outcome(MODEL, t, SEED) for t in CODE_TASKS}
    passing = {tid for tid, o in outcomes.items() if o in ("solution", "with_example")}
    assert 0 < len(passing) < 40 and {"wrong", "prose", "syntax"} <= set(outcomes.values())

    summary = project.build(target, "--json").json()
    assert summary["failed"] == 0  # no code, broken code and failing code are data
    assert summary["nodes"]["solved"]["computed"] == 40
    tested = summary["nodes"]["tested"]
    unparsed = sum(o in ("prose", "syntax") for o in outcomes.values())
    assert tested["computed"] == 40  # a gate annotates every row; select applies the keeps
    assert summary["nodes"]["kept"]["rows_out"] == len(passing)

    rows = jsonl(project.root / "out/code_sft.jsonl")
    kept = {r["id"].removesuffix("/0") for r in rows}  # candidate 0 of each task
    assert kept == passing
    by_id = {t["task_id"]: t for t in CODE_TASKS}
    for r in rows:
        (user, assistant) = [m for m in r["messages"] if m["role"] != "system"]
        task = by_id[r["id"].removesuffix("/0")]
        assert task["prompt"] in user["content"]
        assert assistant["content"] == task["solution"]  # the longest block

    shown = project.cli("show", "@", "--json").json()
    quality = shown["nodes"]["tested"]["stats"]["quality"]
    wrong = sum(o == "wrong" for o in outcomes.values())
    assert quality["reason_counts"] == {"ok": len(passing), "failed": wrong, "error": unparsed}
    assert shown["nodes"]["tested"]["stats"]["kept"] == len(passing)

    before = server.generation_count
    again = project.build(target, "--json").json()
    assert server.generation_count == before
    assert again["nodes"]["tested"]["computed"] == 0
    assert again["nodes"]["tested"]["cached"] == 40
