"""Crashes, concurrent builds and unreachable teachers: nothing lost, nothing corrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
FDBUILD = [sys.executable, "-m", "fdbuild"]


def setup(project: ProjectDir, server, **kw) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(30),
            TARGET: basic_target(server.url, **kw),
        }
    )


def spawn_build(project: ProjectDir, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(
        [*FDBUILD, "build", TARGET, *args],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_kill_9_mid_build_loses_only_in_flight_work(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    ollama_server.latency_s = 0.15
    proc = spawn_build(project)
    wait_for(lambda: ollama_server.generation_count >= 24)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    asked_before = ollama_server.generation_count
    in_flight_at_kill = 4  # the teacher's concurrency bound
    ollama_server.latency_s = 0.0
    res = project.build(TARGET, "--json")
    asked_after = ollama_server.generation_count - asked_before
    # every finished generation was kept: at most the in-flight ones are asked twice
    assert asked_after <= 60 - asked_before + in_flight_at_kill
    assert asked_after >= 60 - asked_before
    assert res.json()["failed"] == 0
    assert len(project.read("targets/out/answers.jsonl").splitlines()) == 60
    # state readable: lock, run record, artifacts
    project.cli("show", "@")
    for path in (project.root / ".fdbuild/objects").glob("*/*.parquet"):
        pq.read_table(path)


def test_second_build_waits_for_the_first(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    ollama_server.latency_s = 0.1
    first = spawn_build(project)
    wait_for(lambda: ollama_server.generation_count >= 2)
    second = spawn_build(project, "--json")
    out2, err2 = second.communicate(timeout=60)
    out1, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting" in err2
    assert json.loads(out2)["teacher_calls"] == 0
    assert ollama_server.generation_count == 60
    runs = sorted((project.root / ".fdbuild/runs").glob("*.json"))
    assert len(runs) == 2


def test_unreachable_server_is_one_clear_message(project: ProjectDir) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: basic_target("http://127.0.0.1:9"),
        }
    )
    res = project.build(TARGET, expect=1)
    assert "127.0.0.1:9" in res.stderr and "OLLAMA_HOST" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (project.root / "fdbuild.lock").exists()


def test_missing_model_says_ollama_pull(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server, model="llama3.2:1b")
    res = project.build(TARGET, expect=1)
    assert "ollama pull llama3.2:1b" in res.stderr
    assert "Traceback" not in res.stderr


def test_gc_keeps_what_the_lock_references(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    project.gen({TARGET: basic_target(ollama_server.url, template="Q: {question}")})
    project.build(TARGET)
    res = project.cli("gc")
    assert "deleted" in res.stdout
    before = ollama_server.generation_count
    project.build(TARGET, "--offline")
    assert ollama_server.generation_count == before
    # the reverted template was collected: it is asked again
    project.gen({TARGET: basic_target(ollama_server.url)})
    project.build(TARGET)
    assert ollama_server.generation_count == before + 60


def test_lock_is_deterministic_and_unchanged_by_noop(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    lock1 = project.read("fdbuild.lock")
    project.build(TARGET)
    lock2 = project.read("fdbuild.lock")

    # only run ids change on a no-op rebuild
    def strip(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if " run: " not in ln and "parent:" not in ln]

    assert strip(lock1) == strip(lock2)
    assert "started_at" not in lock1 and "wall_s" not in lock1


def test_ctrl_c_stops_cleanly_and_keeps_finished_work(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    ollama_server.latency_s = 0.15
    proc = spawn_build(project)
    wait_for(lambda: ollama_server.generation_count >= 20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    asked_before = ollama_server.generation_count
    ollama_server.latency_s = 0.0
    project.build(TARGET)
    asked_after = ollama_server.generation_count - asked_before
    assert 60 - asked_before <= asked_after <= 60 - asked_before + 4
    assert len(project.read("targets/out/answers.jsonl").splitlines()) == 60
