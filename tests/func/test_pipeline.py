"""The pipelined engine: a judge starts on the first finished generations while the rest
are still being asked, independent branches run at the same time, and a kill -9 in the
middle of the pipeline loses only what was in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir, questions_jsonl
from tests.support.recipes import recipe_project, recipe_responder

TARGET = "targets/text2sql_candidates.yaml"
GENERATIONS = 40 * 4  # 40 questions, n 4


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


def last_turn(request: dict) -> str:
    """The prompt of a chat request ('' for a request of another shape)."""
    messages = request.get("messages") or [{}]
    return str(messages[-1].get("content", ""))


def is_judge(request: dict) -> bool:
    return "Candidate SQL:" in last_turn(request)


def test_the_judge_starts_before_the_last_generation_is_asked(project: ProjectDir, server) -> None:
    recipe_project(project, ["text2sql_candidates"])
    server.latency_s = 0.05  # 160 generations, 8 at a time: about 1 s of asking
    # --jobs 1: sqlite_exec in this process (a loaded machine may take a second to start
    # a process pool, which is not what this test is about)
    summary = project.build(TARGET, "--jobs", "1", "--json").json()
    assert summary["failed"] == 0
    requests = server.generation_requests
    kinds = [is_judge(r) for r in requests]
    assert kinds.count(False) == GENERATIONS
    first_judge = kinds.index(True)
    last_generation = len(kinds) - 1 - kinds[::-1].index(False)
    # sequentially, every generation would come before the first judgement
    assert first_judge < last_generation, (first_judge, last_generation)


def test_independent_branches_run_at_the_same_time(project: ProjectDir, make_ollama_server):
    srv = make_ollama_server({"model-a:1b": "a" * 64, "model-b:1b": "b" * 64})
    srv.latency_s = 0.02
    project.gen(
        {
            "data/q.jsonl": questions_jsonl(24),
            "t.yaml": f"""fdbuild: 1
name: branches
teachers:
  a: {{model: "model-a:1b", host: "{srv.url}", concurrency: 2}}
  b: {{model: "model-b:1b", host: "{srv.url}", concurrency: 2}}
nodes:
  q: {{kind: source, path: data/q.jsonl, id: task_id}}
  ga: {{kind: generate, input: q, teacher: a, template: "A {{question}}"}}
  gb: {{kind: generate, input: q, teacher: b, template: "B {{question}}"}}
  ea: {{kind: export, input: ga, format: jsonl, path: out/a.jsonl}}
  eb: {{kind: export, input: gb, format: jsonl, path: out/b.jsonl}}
""",
        }
    )
    project.build("t.yaml")
    models = [r["model"] for r in srv.generation_requests]
    assert sorted(models) == ["model-a:1b"] * 24 + ["model-b:1b"] * 24
    # one after the other, all of a's requests would come before any of b's (or after)
    first_b, last_a = models.index("model-b:1b"), len(models) - 1 - models[::-1].index("model-a:1b")
    first_a, last_b = models.index("model-a:1b"), len(models) - 1 - models[::-1].index("model-b:1b")
    assert first_b < last_a and first_a < last_b


def test_kill_9_mid_pipeline_asks_again_only_what_had_not_finished(
    project: ProjectDir, server
) -> None:
    recipe_project(project, ["text2sql_candidates"])
    server.latency_s = 0.05
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fdbuild", "build", TARGET],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    # kill once the judge is at work and generations are still being asked
    while not (
        any(is_judge(r) for r in server.generation_requests)
        and server.generation_count < GENERATIONS
    ):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the judge never overlapped the generations"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    asked_before = server.generation_count
    server.latency_s = 0.0
    summary = project.build(TARGET, "--json").json()
    asked_after = server.generation_count - asked_before
    # twin candidates (the same SQL for one question) share one judge request: what is
    # judged is the distinct judge prompts
    judged = len({last_turn(r) for r in server.generation_requests if is_judge(r)})
    in_flight = 8 + 8  # the teacher's concurrency, for the generations and for the judge
    assert summary["failed"] == 0
    assert asked_before + asked_after <= GENERATIONS + judged + in_flight
    assert asked_before + asked_after >= GENERATIONS + judged
    assert summary["nodes"]["candidates"]["rows_out"] == GENERATIONS
