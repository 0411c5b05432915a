"""``require:`` bars through ``fdbuild build``: a pass exits 0, a miss finishes the
work, records every bar and exits 6 naming the figure, its value and the bar; an unknown
figure fails at load (exit 2); failed rows (exit 3) win over a miss."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.ollama_server import Reply
from tests.support.project import ProjectDir, basic_target, questions_jsonl


def responder(request: dict) -> Reply:
    """Even questions get an answer long enough for the rules gate, odd ones 'no'."""
    i = int(re.search(r"What is (\d+) plus", request["messages"][-1]["content"]).group(1))
    return Reply(text=f"The answer is {2 * i}." if i % 2 == 0 else "no")


def setup(project: ProjectDir, server, require: str) -> None:
    server.responder = responder
    project.gen(
        {
            "data/questions.jsonl": questions_jsonl(8),
            "basic.yaml": basic_target(server.url, n=1, retries=0) + require,
        }
    )


def record_of(project: ProjectDir, run_id: str) -> dict:
    return json.loads((project.root / ".fdbuild/runs" / f"{run_id}.json").read_text())


PASS = """require:
  - {node: checked, figure: pass_rate, min: 0.5}
  - {node: kept, figure: rows, min: 4, max: 4}
"""


def test_a_pass_exits_0(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server, PASS)
    out = project.build("basic.yaml", expect=0)
    assert "require: 3/3 bars passed" in out.stdout
    run_id = re.search(r"run (\S+) of basic", out.stdout).group(1)
    record = record_of(project, run_id)
    assert record["status"] == "ok"
    assert [(r["figure"], r["op"], r["value"], r["ok"]) for r in record["require"]] == [
        ("pass_rate", ">=", 0.5, True),
        ("rows", ">=", 4, True),
        ("rows", "<=", 4, True),
    ]


MISS = """require:
  - {node: checked, figure: pass_rate, min: 0.75}
  - {node: kept, figure: rows, min: 4}
"""


def test_a_miss_finishes_records_and_exits_6(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server, MISS)
    out = project.build("basic.yaml", expect=6)
    assert "require: 1/2 bars passed" in out.stdout
    assert "require: checked pass_rate 0.50 < 0.75 (missed by 0.25)" in out.stdout
    assert len(project.read("out/answers.jsonl").splitlines()) == 4  # the work is finished
    run_id = re.search(r"run (\S+) of basic", out.stdout).group(1)
    record = record_of(project, run_id)
    assert record["status"] == "require_missed"
    missed = [r for r in record["require"] if not r["ok"]]
    assert missed == [
        {
            "node": "checked",
            "figure": "pass_rate",
            "op": ">=",
            "bar": 0.75,
            "value": 0.5,
            "ok": False,
            "by": -0.25,
        }
    ]
    # a no-op rebuild measures the same figures from its memo: the miss stays a miss
    again = project.build("basic.yaml", "--json", expect=6)
    assert again.json()["teacher_calls"] == 0
    assert [r["ok"] for r in again.json()["require"]] == [False, True]


def test_failed_rows_win_over_a_miss(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server, MISS)
    ollama_server.fail_every = 4
    ollama_server.fault = "500"
    out = project.build("basic.yaml", expect=3)
    assert "require: checked pass_rate" in out.stdout  # still printed and recorded


@pytest.mark.parametrize(
    ("bar", "message"),
    [
        (
            "{node: checked, figure: gold_rate, min: 0.5}",
            "require[0].figure: node 'checked' (gate) has no figure 'gold_rate'",
        ),
        ("{node: nope, figure: rows, min: 1}", "require[0].node: 'nope' is not a node"),
        ("{node: kept, figure: rows}", "needs 'min' or 'max'"),
    ],
)
def test_a_bad_bar_fails_at_load(
    project: ProjectDir, ollama_server, bar: str, message: str
) -> None:
    setup(project, ollama_server, f"require:\n  - {bar}\n")
    out = project.build("basic.yaml", expect=2)
    assert message in out.stderr
    assert "basic.yaml:" in out.stderr
    assert ollama_server.generation_count == 0
