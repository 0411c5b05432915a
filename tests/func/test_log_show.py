"""``fdbuild log`` and ``fdbuild show`` end to end, on the scripted builds of
``test_diff`` (frozen ids, times and durations), with snapshots of what they print."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.ollama_server import DEFAULT_MODEL
from tests.support.project import ProjectDir, basic_target, questions_jsonl
from tests.support.scripted import (
    DEFAULT_DIGEST,
    NEW_DIGEST,
    STUDENT,
    STUDENT_DIGEST,
    TEMPLATE_2,
    run_id,
)

# --------------------------------------------------------------------------- log


def test_log_snapshot(scripted: ProjectDir, snapshot: Any) -> None:
    assert scripted.cli("log").stdout == snapshot


def test_log_lists_the_chain_newest_first_with_teacher_kept_calls_and_overrides(
    scripted: ProjectDir,
) -> None:
    lines = scripted.cli("log").stdout.splitlines()
    runs = [line.split()[0] for line in lines[2:]]
    assert runs == [run_id(n) for n in range(6, 0, -1)]
    newest = lines[2]
    assert (
        f"{STUDENT}@{STUDENT_DIGEST[:12]}" in newest and "teachers.main.model=student-v1" in newest
    )
    assert run_id(5) in newest  # its parent
    assert f"qwen2.5-coder:7b@{NEW_DIGEST[:12]}" in lines[4]
    assert f"qwen2.5-coder:7b@{DEFAULT_DIGEST[:12]}" in lines[-1]


def test_log_json(scripted: ProjectDir) -> None:
    data = scripted.cli("log", "--json").json()
    assert list(data) == ["basic"]
    chain = data["basic"]
    assert [r["run_id"] for r in chain] == [run_id(n) for n in range(6, 0, -1)]
    newest, oldest = chain[0], chain[-1]
    assert newest["parent"] == run_id(5) and oldest["parent"] is None
    assert newest["teachers"]["main"] == {
        "model": STUDENT,
        "digest": STUDENT_DIGEST,
        "server_version": "0.32.15",
    }
    assert newest["overrides"] == ["teachers.main.model=student-v1"]
    assert chain[3]["teacher_calls"] == 0 and chain[3]["rows_kept"] == 12  # the keep change
    assert {"time", "rows_kept", "teacher_calls", "failed", "exports", "status"} <= set(newest)


def test_log_target_limit_and_errors(scripted: ProjectDir) -> None:
    assert scripted.cli("log", "basic", "-n", "2").stdout.count("2026-01-01 00:00:0") == 2
    assert scripted.cli("log", "basic.yaml").stdout == scripted.cli("log").stdout
    bad = scripted.cli("log", "nope", expect=2)
    assert "no runs of target 'nope' (targets: basic)" in bad.stderr
    assert "--limit 0" in scripted.cli("log", "-n", "0", expect=2).stderr


def test_log_of_a_new_project(project: ProjectDir) -> None:
    assert "no runs yet" in project.cli("log").stdout


# --------------------------------------------------------------------------- show


@pytest.mark.parametrize("name", ["@", "@~3"])
def test_show_snapshot(scripted: ProjectDir, snapshot: Any, name: str) -> None:
    assert scripted.cli("show", name).stdout == snapshot


def test_show_has_parameters_counts_reports(scripted: ProjectDir) -> None:
    out = scripted.cli("show", run_id(2)).stdout
    assert out.splitlines()[0] == f"run       {run_id(2)}"
    for line in TEMPLATE_2.splitlines():
        assert f"| {line}" in out
    assert "keep           {rule_reason: ok}" in out
    assert "min_chars: 120" in out
    for section in ("parameters", "nodes", "quality", "timing"):
        assert f"\n{section}\n" in out
    order = [line.split()[0] for line in out.split("\nnodes\n")[1].splitlines()[1:6]]
    assert order == ["questions", "answers", "checked", "kept", "export"]


def test_show_json_is_the_record(scripted: ProjectDir) -> None:
    data = scripted.cli("show", run_id(4)[:20], "--json").json()
    record = json.loads(scripted.read(f".fdbuild/runs/{run_id(4)}.json"))
    assert data == record


def test_show_names_and_errors(scripted: ProjectDir) -> None:
    assert scripted.cli("show").stdout == scripted.cli("show", run_id(6)).stdout
    assert scripted.cli("show", "basic@~5").stdout == scripted.cli("show", run_id(1)).stdout
    assert "no run named 'zzz'" in scripted.cli("show", "zzz", expect=2).stderr
    ambiguous = scripted.cli("show", "20260101T", expect=2).stderr
    assert "ambiguous" in ambiguous and run_id(1) in ambiguous and run_id(6) in ambiguous


def test_show_lists_failures(project: ProjectDir, make_ollama_server: Any) -> None:
    server = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, fail_every=3, fault="500")
    project.gen(
        {
            "data/questions.jsonl": questions_jsonl(4),
            "basic.yaml": basic_target(server.url, retries=0),
        }
    )
    project.build("basic.yaml", expect=3)
    out = project.cli("show", "@").stdout
    record = project.cli("show", "@", "--json").json()
    assert record["failures"]
    assert f"failures ({len(record['failures'])})" in out
    first = record["failures"][0]
    assert f"{first['node']} {first['row_id']}: {first['reason']}" in out
    log = project.cli("log", "--json").json()["basic"][0]
    assert log["failed"] == len(record["failures"])


# --------------------------------------------------------------------------- a clone, bad records


@pytest.fixture
def clone(scripted: ProjectDir, tmp_path: Path) -> ProjectDir:
    """The scripted project as a clone of it has it when the lock is committed: the
    target, its data and fdbuild.lock, but no .fdbuild/."""
    root = tmp_path / "clone"
    shutil.copytree(scripted.root, root, ignore=shutil.ignore_patterns(".fdbuild", "out"))
    return ProjectDir(root)


def test_log_from_the_lock_snapshot(clone: ProjectDir, snapshot: Any) -> None:
    result = clone.cli("log")
    assert result.stderr == ""
    assert result.stdout == snapshot


def test_show_from_the_lock_snapshot(clone: ProjectDir, snapshot: Any) -> None:
    assert clone.cli("show").stdout == snapshot


def test_log_skips_an_unreadable_record_with_one_warning(
    scripted: ProjectDir, tmp_path: Path, snapshot: Any
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(scripted.root, root)
    copy = ProjectDir(root)
    bad = f".fdbuild/runs/{run_id(3)}.json"
    record = json.loads(copy.read(bad))
    record["parent"] = 2  # the wrong type
    copy.gen({bad: json.dumps(record)})
    result = copy.cli("log")
    assert result.stdout == snapshot
    assert result.stderr == (
        f"fdbuild: warning: run record {bad} is unreadable (parent: expected a string, got an "
        "integer); skipped; `fdbuild show` cannot show this run\n"
    )
    assert [r["run_id"] for r in copy.cli("log", "--json").json()["basic"]] == [
        run_id(n) for n in (6, 5, 4)
    ]
    shown = copy.cli("show", run_id(3), expect=2)
    assert f"run record {bad} is unreadable: parent: expected a string" in shown.stderr
