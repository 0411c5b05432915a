"""Scripted builds shared by the diff, log and show tests: six builds against the test
server (first, template edit, keep change, digest change, rows appended, teacher swap),
with run ids, times and durations frozen so their renderings can be snapshotted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fdbuild.reports import build_reports
from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL, FakeOllama
from tests.support.project import ProjectDir, basic_target, questions_jsonl

TEMPLATE_1 = "Question: {question}\nAnswer:"
TEMPLATE_2 = "Question: {question}\nThink step by step, then answer.\nAnswer:"
KEEP_1 = "{rule_reason: ok}"
KEEP_2 = "{rule_reason: {in: [ok, too_short]}}"
NEW_DIGEST = "ab" * 32
STUDENT = "student-v1:latest"
STUDENT_DIGEST = "5d" * 32
MIN_CHARS = 120

# (step name, what changed) in build order; build N is the N-th run.
STEPS = ("first", "template", "keep", "digest", "rows", "teacher")


def scripted_target(url: str, *, template: str = TEMPLATE_1, keep: str = KEEP_1) -> str:
    return basic_target(url, template=template, keep=keep, min_chars=MIN_CHARS)


def scripted_builds(project: ProjectDir, server: FakeOllama) -> list[str]:
    """Six builds, each changing one thing; returns the run ids in build order."""
    url = server.url
    project.gen({"data/questions.jsonl": questions_jsonl(6), "basic.yaml": scripted_target(url)})
    project.build("basic.yaml")
    project.gen({"basic.yaml": scripted_target(url, template=TEMPLATE_2)})
    project.build("basic.yaml")
    project.gen({"basic.yaml": scripted_target(url, template=TEMPLATE_2, keep=KEEP_2)})
    project.build("basic.yaml")
    server.set_digest(DEFAULT_MODEL, NEW_DIGEST)
    project.build("basic.yaml")
    project.gen({"data/questions.jsonl": questions_jsonl(9)})
    project.build("basic.yaml")
    server.add_model(STUDENT, STUDENT_DIGEST)
    project.build("basic.yaml", "--set", "teachers.main.model=student-v1")
    return run_ids(project)


def run_ids(project: ProjectDir) -> list[str]:
    """Run ids oldest first, following the parent chain from the lock's latest run."""
    lock = project.read("fdbuild.lock")
    latest = next(line.split()[-1] for line in lock.splitlines() if line.strip().startswith("run:"))
    ids = []
    current: str | None = latest
    while current:
        ids.append(current)
        record = json.loads(project.read(f".fdbuild/runs/{current}.json"))
        current = record.get("parent")
    return ids[::-1]


def _scrub(record: dict[str, Any], index: int) -> None:
    stamp = f"2026-01-01T00:00:{index:02d}Z"
    record["started_at"] = record["finished_at"] = stamp
    record["wall_s"] = 1.0
    record["python"] = "3.x"
    for node in record["nodes"].values():
        stats = node["stats"]
        stats["wall_s"] = 0.5 if stats.get("teacher_calls") else 0.0
        for key in ("teacher_wall_s",):
            if key in stats:
                stats[key] = stats["wall_s"]
        for key, value in (("latency_p50_s", 0.01), ("latency_p95_s", 0.02)):
            if stats.get(key) is not None:
                stats[key] = value
    record["reports"] = build_reports(record)


def freeze_runs(project: ProjectDir) -> dict[str, str]:
    """Rewrite ids, times and durations deterministically; returns real id -> frozen id."""
    ids = run_ids(project)
    mapping = {real: f"20260101T{i:06d}Z-run{i:03d}" for i, real in enumerate(ids, start=1)}
    runs_dir = project.root / ".fdbuild" / "runs"
    for i, real in enumerate(ids, start=1):
        path = runs_dir / f"{real}.json"
        text = path.read_text(encoding="utf-8")
        for old, new in mapping.items():
            text = text.replace(old, new)
        record = json.loads(text)
        _scrub(record, i)
        path.unlink()
        (runs_dir / f"{mapping[real]}.json").write_text(
            json.dumps(record, indent=2, sort_keys=True)
        )
    lock = project.read("fdbuild.lock")
    for old, new in mapping.items():
        lock = lock.replace(old, new)
    project.gen({"fdbuild.lock": lock})
    return mapping


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectDir]:
    """The six builds, frozen; shared read-only by the tests of this module."""
    server = FakeOllama({DEFAULT_MODEL: DEFAULT_DIGEST}).start()
    try:
        project = ProjectDir(tmp_path_factory.mktemp("scripted") / "proj")
        project.root.mkdir()
        scripted_builds(project, server)
        freeze_runs(project)
        yield project
    finally:
        server.stop()


def run_id(n: int) -> str:
    return f"20260101T{n:06d}Z-run{n:03d}"
