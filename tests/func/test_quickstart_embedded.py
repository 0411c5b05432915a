"""Issues 6 and 10: the quickstart target with the real embedded SmolLM2 teacher (no server):
caching, the model_path swap, the funnel, and only gold-verified rows exported."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed: pip install 'fdbuild[embedded]'"
)

from fdbuild.providers.llamacpp import bundled_gguf_path  # noqa: E402
from tests.support.project import ProjectDir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded


def small_quickstart(project: ProjectDir, rows: int = 6) -> str:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    lines = (REPO / "examples/wikisql_mini/train.jsonl").read_text().splitlines()[:rows]
    project.gen({"examples/wikisql_mini/small.jsonl": "\n".join(lines) + "\n"})
    text = (
        (REPO / "targets/quickstart.yaml")
        .read_text()
        .replace("wikisql_mini/train.jsonl", "wikisql_mini/small.jsonl")
    )
    project.gen({"targets/quickstart.yaml": text})
    return text


N = "--set=nodes.sql.n=2"  # 2 candidates per question keep the real model's test short


def exported_rows_match_gold(project: ProjectDir) -> list[dict]:
    """Every exported answer, executed on train.db, returns what the gold query returns."""
    db = sqlite3.connect(project.root / "examples/wikisql_mini/train.db")
    gold = {
        json.loads(line)["question"]: json.loads(line)["gold_sql"]
        for line in project.read("examples/wikisql_mini/train.jsonl").splitlines()
    }
    rows = [json.loads(line) for line in project.read("out/quickstart_sft.jsonl").splitlines()]
    for row in rows:
        question = re.search(r"Question: (.*)", row["messages"][-2]["content"]).group(1)
        answer = row["messages"][-1]["content"]
        assert sorted(map(repr, db.execute(answer).fetchall())) == sorted(
            map(repr, db.execute(gold[question]).fetchall())
        ), (question, answer)
    return rows


def test_quickstart_rebuild_edit_and_model_path_swap(project: ProjectDir) -> None:
    try:
        gguf = bundled_gguf_path("smollm2-135m")
    except Exception as exc:  # the model wheel missing is an install problem, say so
        pytest.skip(f"SmolLM2 model not installed: {exc}")
    text = small_quickstart(project, rows=4)
    first = project.build("targets/quickstart.yaml", N)
    funnel = [line.strip() for line in first.stdout.splitlines() if "funnel:" in line]
    assert funnel and funnel[0].startswith("funnel: asked 8 -> parsed ")
    assert "matches gold" in funnel[0] and "voted" in funnel[0]
    rows = exported_rows_match_gold(project)
    warned = "fdbuild: warning: export 'sft' wrote 0 rows" in first.stderr
    assert warned == (not rows)  # an empty export is always announced, and only then
    export = project.read_bytes("out/quickstart_sft.jsonl")

    again = project.build("targets/quickstart.yaml", N, "--json").json()
    assert again["teacher_calls"] == 0
    assert project.read_bytes("out/quickstart_sft.jsonl") == export

    swapped = text.replace("    model: smollm2-135m", f"    model_path: {gguf}")
    assert swapped != text
    project.gen({"targets/quickstart.yaml": swapped})
    summary = project.build("targets/quickstart.yaml", N, "--json").json()
    assert summary["teacher_calls"] == 0  # same file, same digest: nothing recomputed

    project.gen({"targets/quickstart.yaml": text.replace("Question: {question}", "Q: {question}")})
    edited = project.build("targets/quickstart.yaml", N, "--json").json()
    assert edited["nodes"]["sql"]["computed"] == 8 and edited["teacher_calls"] == 8

    offline = project.build("targets/quickstart.yaml", N, "--offline", "--json").json()
    assert offline["teacher_calls"] == 0
