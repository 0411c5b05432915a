"""Issue 3 acceptance at the pipeline level: SQL gates, the judge, reports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.support.ollama_server import Reply
from tests.support.project import ProjectDir

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ROWS = [
    json.loads(line)
    for line in (REPO / "examples/wikisql_mini/train.jsonl").read_text().splitlines()
]


def text2sql_responder(request: dict) -> Reply:
    """Gold SQL for even questions, a wrong column for odd ones; judges say 'Score: N/10'."""
    prompt = request["messages"][-1]["content"]
    if "Candidate SQL:" in prompt:
        sql = prompt.split("Candidate SQL:")[1].split("\n")[0]
        return Reply(text=f"Score: {len(sql) % 11}/10")
    rows = {r["question"]: r for r in EXAMPLE_ROWS}
    question = re.search(r"Question: (.*)", prompt).group(1).strip()
    row = rows[question]
    index = int(row["task_id"].rsplit("-", 1)[1])
    sql = (
        row["gold_sql"]
        if index % 2 == 0
        else row["gold_sql"].replace(" FROM ", " FROM missing_", 1)
    )
    return Reply(text=f"```sql\n{sql}\n```")


def copy_recipe(project: ProjectDir, server) -> Path:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    (project.root / "targets").mkdir()
    shutil.copy(REPO / "targets/text2sql_sft.yaml", project.root / "targets/text2sql_sft.yaml")
    server.responder = text2sql_responder
    return project.root / "targets/text2sql_sft.yaml"


def test_text2sql_builds_with_reports(project: ProjectDir, ollama_server, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    copy_recipe(project, ollama_server)
    summary = project.build("targets/text2sql_sft.yaml", "--json").json()
    nodes = summary["nodes"]
    assert nodes["sql"]["computed"] == 40
    assert nodes["executed"]["rows_out"] == 40
    export = project.read("out/text2sql_sft.jsonl").splitlines()
    assert 0 < len(export) <= 20
    first = json.loads(export[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][2]["content"].startswith("SELECT")
    report = json.loads(project.read("out/text2sql_sft.jsonl.report.json"))
    executed = report["quality"]["executed"]
    assert executed["gold_match_rate"] == 0.5
    assert "exec_pass_rate" in executed and "exec_error_counts" in executed
    assert "score_mean" in report["quality"]["judged"]
    assert report["timing"]["sql"]["teacher_calls"] == 40
    shown = project.cli("show", "@").stdout
    assert "quality" in shown and "gold_match_rate=0.5" in shown and "timing" in shown


def test_threshold_and_judge_template_edits(
    project: ProjectDir, ollama_server, monkeypatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    target = copy_recipe(project, ollama_server)
    project.build("targets/text2sql_sft.yaml")
    text = target.read_text()

    before = ollama_server.generation_count
    target.write_text(text.replace("keep: {score: {min: 0.5}}", "keep: {score: {min: 0.8}}"))
    summary = project.build("targets/text2sql_sft.yaml", "--json").json()
    assert ollama_server.generation_count == before
    assert summary["teacher_calls"] == 0
    assert summary["nodes"]["executed"]["computed"] == 0  # no SQL executed again
    assert summary["nodes"]["judged"]["computed"] == 0

    target.write_text(text.replace("How well does", "How exactly does"))
    summary = project.build("targets/text2sql_sft.yaml", "--json").json()
    judged_rows = summary["nodes"]["judged"]["rows_in"]
    assert summary["nodes"]["sql"]["computed"] == 0
    assert summary["nodes"]["judged"]["teacher_calls"] == judged_rows
    assert summary["teacher_calls"] == judged_rows


def test_gates_work_on_a_source_of_pairs(project: ProjectDir) -> None:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    rows = EXAMPLE_ROWS[:6]
    pairs = [
        {
            "id": r["task_id"],
            "sql": r["gold_sql"] if i % 3 else "SELECT nope FROM x",
            "gold_sql": r["gold_sql"],
        }
        for i, r in enumerate(rows)
    ]
    project.gen(
        {
            "pairs.jsonl": "".join(json.dumps(p) + "\n" for p in pairs),
            "t.yaml": """fdbuild: 1
nodes:
  pairs: {kind: source, path: pairs.jsonl, id: id}
  executed:
    kind: gate
    input: pairs
    check: sqlite_exec
    params: {db: examples/wikisql_mini/train.db}
    keep: {gold_match: true}
  kept: {kind: select, input: executed}
  out: {kind: export, input: kept, format: jsonl, path: out/kept.jsonl}
""",
        }
    )
    summary = project.build("t.yaml", "--json").json()
    assert summary["nodes"]["kept"]["rows_out"] == 4
    db = (project.root / "examples/wikisql_mini/train.db").read_bytes()
    assert db == (REPO / "examples/wikisql_mini/train.db").read_bytes()
