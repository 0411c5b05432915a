"""A fresh clone is a first-class state (issue 10, Build 3).

Two kinds of clone: this repository, which does not commit its own ``fdbuild.lock`` (a
first build there has parent none and leaves ``git status`` clean), and a user's project
that commits its lock but not ``.fdbuild/`` (``log``, ``show`` and ``diff`` work from what
the lock records, and say so; the first build there is a child of the lock's run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from fdbuild.lockfile import load_lock
from tests.support.ollama_server import FakeOllama
from tests.support.project import ProjectDir, basic_target, questions_jsonl

REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _files(server: FakeOllama, template: str = "Question: {question}\nAnswer:") -> dict[str, str]:
    return {
        "basic.yaml": basic_target(server.url, template=template),
        "data/questions.jsonl": questions_jsonl(6),
    }


# --------------------------------------------------------------------------- this repository


def test_the_repository_does_not_commit_its_own_lock() -> None:
    assert (REPO / ".git").exists(), "run the tests from a git checkout of fdbuild"
    assert _git(REPO, "ls-files", "fdbuild.lock") == ""
    ignored = _git(REPO, "check-ignore", "fdbuild.lock", ".fdbuild/runs/x.json", "out/x.jsonl")
    assert ignored.split() == ["fdbuild.lock", ".fdbuild/runs/x.json", "out/x.jsonl"]
    example = load_lock(REPO / "docs/examples/fdbuild.lock")  # the lockfile.md walkthrough
    assert list(example["targets"]) == ["quickstart"]


def test_a_clone_of_the_repository_builds_with_parent_none_and_stays_clean(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    project.gen({**_files(ollama_server), ".gitignore": (REPO / ".gitignore").read_text()})
    _git(project.root, "init", "-q")
    _git(project.root, "add", ".")
    _git(
        project.root,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "-m",
        "clone",
    )
    first = project.build("basic.yaml")
    assert "(parent none)" in first.stderr + first.stdout
    assert "next: edit the template in basic.yaml" in first.stderr + first.stdout
    project.gen(_files(ollama_server, template="Q: {question}\nA:"))
    _git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "edit")
    project.build("basic.yaml")
    assert project.cli("diff", "@~1", "@").code == 0
    assert _git(project.root, "status", "--porcelain") == ""


# --------------------------------------------------------------------------- a user's clone


def _clone_with_lock(origin: ProjectDir, server: FakeOllama) -> tuple[ProjectDir, str, str]:
    """Build twice in ``origin``; copy what a user commits (target, data, lock) to a new
    folder, as ``git clone`` would give it. Returns the clone, the lock's run and parent."""
    origin.gen(_files(server))
    origin.build("basic.yaml")
    origin.gen(_files(server, template="Q: {question}\nA:"))
    origin.build("basic.yaml")
    entry = load_lock(origin.root / "fdbuild.lock")["targets"]["basic"]
    clone = ProjectDir(origin.root.parent / "clone")
    clone.root.mkdir()
    for rel in ("basic.yaml", "data/questions.jsonl", "fdbuild.lock"):
        (clone.root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(origin.root / rel, clone.root / rel)
    return clone, entry["run"], entry["parent"]


def test_log_and_show_work_from_the_lock_and_say_so(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    clone, run, parent = _clone_with_lock(project, ollama_server)
    log = clone.cli("log")
    assert f"{run}*" in log.stdout and "calls, failures and timing unknown" in log.stdout
    assert "* from fdbuild.lock; run record not in this checkout" in log.stdout
    assert f"the chain stops at {parent}, which has no run record in this checkout" in log.stdout
    assert log.stderr == ""
    (row,) = clone.cli("log", "--json").json()["basic"]
    assert row["from_lock"] is True and row["rows_kept"] == 12 and row["teacher_calls"] is None
    show = clone.cli("show", "@")
    assert f"run       {run}" in show.stdout
    assert "source    from fdbuild.lock; run record not in this checkout" in show.stdout
    assert "template_digest" in show.stdout  # the lock keeps long texts as digests
    assert clone.cli("show", "--json").json()["from_lock"] is True
    no_parent = clone.cli("diff", expect=2)
    assert f"parent {parent} has no run record in this checkout" in no_parent.stderr
    assert "Traceback" not in no_parent.stderr


def test_the_first_build_of_a_clone_is_a_child_of_the_lock_run_and_diffs_against_it(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    clone, run, _ = _clone_with_lock(project, ollama_server)
    clone.gen(_files(ollama_server, template="Question: {question}\nShort answer:"))
    built = clone.build("basic.yaml")
    assert f"(parent {run})" in built.stderr + built.stdout
    kept = clone.root / ".fdbuild/runs/from-lock" / f"{run}.json"
    assert json.loads(kept.read_text())["from_lock"] is True  # kept before the lock moved on
    log = clone.cli("log").stdout
    assert "2 run(s)" in log and f"{run}*" in log
    diff = clone.cli("diff", "@~1", "@")
    assert "from fdbuild.lock" in diff.stdout.splitlines()[0]
    assert "note: run A" in diff.stdout and "compared by digest" in diff.stdout
    assert "answers  template_digest  x3:" in diff.stdout
    assert "rendered prompt changed (template edited)" in diff.stdout
    assert "its artifacts (under .fdbuild/, not committed) are not in this checkout" in diff.stdout
    data = clone.cli("diff", "--json").json()
    assert data["a"]["from_lock"] is True and data["b"]["from_lock"] is False
    assert [p["name"] for p in data["parameters"] if p["scope"] == "answers"] == ["template_digest"]


# --------------------------------------------------------------------------- unreadable state


def _three_runs(project: ProjectDir, server: FakeOllama) -> list[str]:
    runs = []
    for template in ("Q1: {question}\nA:", "Q2: {question}\nA:", "Q3: {question}\nA:"):
        project.gen(_files(server, template=template))
        project.build("basic.yaml")
        runs.append(load_lock(project.root / "fdbuild.lock")["targets"]["basic"]["run"])
    return runs


def test_an_unreadable_run_record_is_skipped_by_log_and_diff_with_one_warning(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    first, middle, last = _three_runs(project, ollama_server)
    bad = project.root / ".fdbuild/runs" / f"{middle}.json"
    good = bad.read_text()
    bad.write_text(good[:200])  # truncated: does not parse
    log = project.cli("log")
    assert log.stdout.splitlines()[2].split()[0] == last
    assert f"the chain stops at {middle}, whose run record is unreadable" in log.stdout
    warnings = [line for line in log.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"fdbuild: warning: run record .fdbuild/runs/{middle}.json is unreadable "
        f"({warnings[0].split('(', 1)[1].rsplit(')', 1)[0]}); skipped; "
        "`fdbuild show` cannot show this run"
    ]
    assert "does not parse" in warnings[0]
    through = project.cli("diff", "@~1", "@", expect=2)
    assert f"the chain stops at {middle}, whose run record is unreadable" in through.stderr
    assert through.stderr.count("warning") == 1
    assert project.cli("diff", first, last).code == 0  # runs that read are still diffed
    show = project.cli("show", middle, expect=2)
    assert f"run record .fdbuild/runs/{middle}.json is unreadable: does not parse" in show.stderr
    # no lock: the latest run is found from the records that read, by their parent links
    (project.root / "fdbuild.lock").unlink()
    bad.write_text(good)
    oldest = project.root / ".fdbuild/runs" / f"{first}.json"
    oldest.write_text("[]")
    unlocked = project.cli("log")
    assert [line.split()[0] for line in unlocked.stdout.splitlines()[2:4]] == [last, middle]
    assert f"the chain stops at {first}, whose run record is unreadable" in unlocked.stdout
    assert unlocked.stderr.count("warning") == 1 and "expected a mapping" in unlocked.stderr


def test_a_record_of_the_wrong_shape_names_the_key_and_the_lock_stands_in(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    _, middle, last = _three_runs(project, ollama_server)
    path = project.root / ".fdbuild/runs" / f"{last}.json"
    record = json.loads(path.read_text())
    record["nodes"]["answers"]["output"] = [1, 2]
    path.write_text(json.dumps(record))
    show = project.cli("show", "@", expect=2)
    assert show.stderr == (
        f"fdbuild: error: run record .fdbuild/runs/{last}.json is unreadable: "
        "nodes.answers.output: expected a mapping, got a list\n"
    )
    log = project.cli("log")  # the lock records the latest run: it stands in, and the chain goes on
    assert "using what fdbuild.lock records of the run instead" in log.stderr
    assert f"{last}*" in log.stdout and middle in log.stdout and "3 run(s)" in log.stdout
    diff = project.cli("diff", "@~1", "@")
    assert diff.stderr.count("warning") == 1 and "from fdbuild.lock" in diff.stdout


def test_a_lock_of_the_wrong_shape_exits_2_naming_file_line_and_key(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    project.gen(_files(ollama_server))
    project.gen({"fdbuild.lock": "schema: 1\ntargets: [1, 2]\n"})
    expected = "fdbuild: error: fdbuild.lock:2: targets: expected a mapping, got a list"
    for command in (("build", "basic.yaml"), ("log",), ("show",), ("diff",), ("gc",)):
        result = project.cli(*command, expect=2)
        assert result.stderr.startswith(expected), command
        assert "Traceback" not in result.stderr
    assert project.read("fdbuild.lock") == "schema: 1\ntargets: [1, 2]\n"  # never overwritten
    project.gen({"fdbuild.lock": "schema: 1\ntargets:\n  basic:\n    run: 7\n"})
    run = project.cli("log", expect=2)
    assert "fdbuild.lock:4: targets.basic.run: expected a string, got an integer" in run.stderr
    project.gen({"fdbuild.lock": "schema: 1\ntargets: {basic: [\n"})
    assert "fdbuild.lock: cannot parse" in project.cli("log", expect=2).stderr
