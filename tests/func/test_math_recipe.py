"""Issue 12: targets/math_sft.yaml builds against the test server (a scripted math
teacher), keeps exactly the replies whose final answer is the gold, exports steps plus
answer, and rebuilds with no teacher call; a gate param edit re-evaluates, asks nobody."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.math_recipe import MATH_ROWS, expected_correct
from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import recipe_project, recipe_responder

TARGET = "targets/math_sft.yaml"


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_math_sft_keeps_verified_answers_and_rebuilds_free(project: ProjectDir, server) -> None:
    assert recipe_project(project, ["math_sft"]) == [TARGET]
    summary = project.build(TARGET, "--json").json()
    assert summary["failed"] == 0  # a reply without delimiters is data, not a failure
    assert summary["nodes"]["solved"]["computed"] == 40 == server.generation_count
    expected = {
        row["id"] for row in MATH_ROWS if expected_correct(DEFAULT_MODEL, row["question"], 7)
    }
    assert 20 < len(expected) < 40  # the scripted teacher is wrong or malformed sometimes

    fields = jsonl(project.root / "out/math_sft.jsonl")
    assert {r["_id"].split("/")[0] for r in fields} == expected  # candidate ids: m01/0
    by_id = {row["id"]: row for row in MATH_ROWS}
    rules = {r["math_extracted_by"] for r in fields}
    assert {"hash", "boxed", "answer_is"} - rules == {"hash"}  # forms the teacher used
    for rec in fields:
        assert rec["gold"] == by_id[rec["_id"].split("/")[0]]["gold"]
        assert rec["rationale"].startswith("Compute ")
        assert rec["math_answer"].replace(",", "").lstrip("$") == rec["gold"]

    sft = jsonl(project.root / "out/math_sft.sft.jsonl")
    assert len(sft) == len(expected)
    first = sft[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[1]["content"] == by_id[sft[0]["id"].split("/")[0]]["question"]
    assert "### RATIONALE" in first[2]["content"] and "### ANSWER" in first[2]["content"]

    record = project.cli("show", "@", "--json").json()
    assert record["nodes"]["verified"]["stats"]["kept"] == len(expected)

    out = project.root / "out"
    before = {p: p.read_bytes() for p in out.glob("math_sft.*") if "report" not in p.name}
    calls = server.generation_count
    again = project.build(TARGET, "--json").json()
    assert server.generation_count == calls and again["teacher_calls"] == 0
    assert {p: p.read_bytes() for p in before} == before

    # a tolerance edit re-evaluates the gate's rows (the key holds the params) and asks
    # the teacher nothing; the verdicts stay the same
    path = project.root / TARGET
    path.write_text(path.read_text().replace("tolerance: 0.000001", "tolerance: 0.001"))
    edited = project.build(TARGET, "--json").json()
    assert server.generation_count == calls
    parsed = 40 - edited["nodes"]["solved"].get("parse_failed", 0)
    assert edited["nodes"]["verified"]["computed"] > 0
    assert edited["nodes"]["verified"]["computed"] <= parsed
    kept = {r["_id"].split("/")[0] for r in jsonl(project.root / "out/math_sft.jsonl")}
    assert kept == expected
