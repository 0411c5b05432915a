"""Issue 10: the build summary's funnel (asked -> parsed -> executes -> matches gold ->
exported) and the warning on a 0-row export, against the Ollama-protocol test server.

The responder decides each candidate's fate from the seed it is sent (candidate k gets
``seed + k``), so every count of the funnel is known in advance."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.ollama_server import Reply
from tests.support.project import ProjectDir

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    json.loads(line)
    for line in (REPO / "examples/wikisql_mini/train.jsonl").read_text().splitlines()
]
SEED = 7
N = 4

TARGET = """\
fdbuild: 1
name: funnel
teachers:
  main: {model: qwen2.5-coder:7b}
nodes:
  questions:
    kind: source
    path: ../examples/wikisql_mini/train.jsonl
    id: task_id
  sql:
    kind: generate
    input: questions
    teacher: main
    template: "{schema}\\nQuestion: {question}\\nSQL:"
    n: 4
    decode: {temperature: 0.8, seed: 7}
    parse: sql
  parsed:
    kind: gate
    input: sql
    check: sql_parse
    keep: {parse_ok: true, read_only: true}
  executed:
    kind: gate
    input: parsed
    check: sqlite_exec
    params: {db: ../examples/wikisql_mini/train.db}
    keep: KEEP
  VOTE
  sft:
    kind: export
    input: LAST
    format: sft_jsonl
    path: ../out/funnel.jsonl
    options: {response: sql}
"""


def candidate_reply(request: dict[str, Any]) -> Reply:
    """Candidate 0: the gold query for even-numbered questions, a query that returns
    nothing for odd ones; 1: prose; 2: a missing table; 3: gold with ``LIMIT 0``."""
    question = re.search(r"Question: (.*)", request["messages"][-1]["content"]).group(1)
    row = next(r for r in ROWS if r["question"] == question.strip())
    index = int(row["task_id"].rsplit("-", 1)[1])
    k = request["options"]["seed"] - SEED
    gold = row["gold_sql"]
    if k == 0:
        return Reply(text=gold if index % 2 == 0 else gold + " LIMIT 0")
    if k == 1:
        return Reply(text="I am not sure which table holds that.")
    if k == 2:
        return Reply(text=gold.replace(" FROM ", " FROM missing_", 1))
    return Reply(text=gold + " LIMIT 0")


def setup(project: ProjectDir, server: Any, *, keep: str, vote: bool) -> str:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    text = TARGET.replace("KEEP", keep)
    if vote:
        text = text.replace("VOTE", "voted: {kind: vote, input: executed}")
        text = text.replace("LAST", "voted")
    else:
        text = text.replace("VOTE", "kept: {kind: select, input: executed}")
        text = text.replace("LAST", "kept")
    project.gen({"targets/funnel.yaml": text})
    server.responder = candidate_reply
    return "targets/funnel.yaml"


@pytest.fixture
def server(ollama_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    return ollama_server


def funnel_line(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip().startswith("funnel:")]
    assert len(lines) == 1, stdout
    return lines[0]


def test_funnel_counts_each_stage_exactly_and_exports_only_gold_matches(
    project: ProjectDir, server: Any
) -> None:
    target = setup(project, server, keep="{exec_pass: true, gold_match: true}", vote=True)
    result = project.build(target)
    # 40 questions x 4 candidates; 1 in 4 is prose (not valid SQL), 1 in 4 names a
    # missing table; the gold query runs for every question, matches for the 20 even ones
    assert funnel_line(result.stdout) == (
        "funnel: asked 160 -> parsed 160 -> valid SQL 120 -> executes 80 -> "
        "matches gold 20 -> voted 20 -> exported 20 (sft)"
    )
    assert "warning" not in result.stdout + result.stderr

    record = json.loads(
        next((project.root / ".fdbuild/runs").glob("*.json")).read_text(encoding="utf-8")
    )
    (funnel,) = record["reports"]["funnel"]
    stages = {s["stage"]: s for s in funnel["stages"]}
    assert stages["matches gold"]["node"] == "executed"
    assert stages["matches gold"]["keep"] == ["gold_match"]
    assert stages["executes"]["keep"] == ["exec_pass"]
    report = json.loads(project.read("out/funnel.jsonl.report.json"))
    assert report["funnel"] == record["reports"]["funnel"]

    # every exported answer returns the gold result on the database
    db = sqlite3.connect(project.root / "examples/wikisql_mini/train.db")
    gold = {r["question"]: r["gold_sql"] for r in ROWS}
    exported = [json.loads(line) for line in project.read("out/funnel.jsonl").splitlines()]
    assert len(exported) == 20
    for row in exported:
        question = re.search(r"Question: (.*)", row["messages"][-2]["content"]).group(1)
        answer = row["messages"][-1]["content"]
        want = db.execute(gold[question]).fetchall()
        assert sorted(db.execute(answer).fetchall()) == sorted(want) and want

    # a rebuild reuses every node and prints the same funnel (read from the same rows)
    again = project.build(target)
    assert funnel_line(again.stdout) == funnel_line(result.stdout)


def test_a_select_that_keeps_rows_executing_shows_no_gold_stage(
    project: ProjectDir, server: Any
) -> None:
    target = setup(project, server, keep="{exec_pass: true}", vote=False)
    result = project.build(target)
    assert funnel_line(result.stdout) == (
        "funnel: asked 160 -> parsed 160 -> valid SQL 120 -> executes 80 -> exported 80 (sft)"
    )


def test_a_zero_row_export_warns_naming_the_gate_that_dropped_everything(
    project: ProjectDir, server: Any
) -> None:
    target = setup(project, server, keep="{exec_pass: true, gold_match: true}", vote=False)
    project.root.joinpath(target).write_text(
        project.read(target).replace("decode: {temperature: 0.8, seed: 7}", "decode: {seed: 8}")
    )  # seeds 8..11: prose, a missing table, LIMIT 0 twice: 80 run, none right
    result = project.build(target)
    assert result.code == 0  # a warning, not a failure: the build did what it was told
    assert "matches gold 0" in funnel_line(result.stdout)
    warning = (
        "export 'sft' wrote 0 rows to out/funnel.jsonl: gate 'executed' passed none of the "
        "80 rows that reached it (stage 'matches gold', keep: gold_match)"
    )
    assert f"fdbuild: warning: {warning}" in result.stderr
    assert f"  warning: {warning}" in result.stdout
    assert project.read("out/funnel.jsonl") == ""

    as_json = project.build(target, "--json")
    assert f"fdbuild: warning: {warning}" in as_json.stderr
    assert json.loads(as_json.stdout)["nodes"]["sft"]["rows_out"] == 0


def test_a_source_with_no_rows_is_named_when_nothing_is_exported(project: ProjectDir) -> None:
    project.gen(
        {
            "data/empty.jsonl": "",
            "t.yaml": (
                "fdbuild: 1\nname: empty\nnodes:\n"
                "  rows: {kind: source, path: data/empty.jsonl}\n"
                "  out: {kind: export, input: rows, format: jsonl, path: out/empty.jsonl}\n"
            ),
        }
    )
    result = project.build("t.yaml")
    assert "funnel:" not in result.stdout  # no generate node: nothing to funnel
    assert (
        "fdbuild: warning: export 'out' wrote 0 rows to out/empty.jsonl: "
        "source 'rows' has 0 rows" in result.stderr
    )
