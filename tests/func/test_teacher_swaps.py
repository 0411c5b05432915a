"""Issue 10: teacher swaps by --set, --offline for in-process teachers, and dry runs with
the teacher unreachable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.project import ProjectDir, basic_target, questions_jsonl

REPO = Path(__file__).resolve().parents[2]
TARGET = "targets/basic.yaml"


# -- dry runs never need the teacher (test server, no Ollama)


def test_dry_run_with_the_teacher_down_uses_the_lock(project: ProjectDir, ollama_server) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(5),
            TARGET: basic_target(ollama_server.url),
        }
    )
    project.build(TARGET)
    down = basic_target("http://127.0.0.1:1")
    project.gen({TARGET: down})
    plan = project.build(TARGET, "--dry-run")
    assert "teacher main unreachable: using the digest recorded in fdbuild.lock" in plan.stderr
    assert "answers" in plan.stdout and "unchanged: 10 rows reused" in plan.stdout
    assert "✓" not in plan.stderr  # a plan, not completed-node lines
    project.gen({TARGET: down.replace("Answer:", "A:")})
    edited = project.build(TARGET, "--dry-run")
    assert "0 cached, 10 to compute" in edited.stdout and "template edited" in edited.stdout


def test_dry_run_with_the_teacher_down_and_nothing_recorded(project: ProjectDir) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: basic_target("http://127.0.0.1:1"),
        }
    )
    plan = project.build(TARGET, "--dry-run")
    assert "teacher main unreachable and no digest recorded" in plan.stderr
    assert "0 cached, 6 to compute" in plan.stdout
    assert not (project.root / ".fdbuild/runs").exists() or not any(
        (project.root / ".fdbuild/runs").iterdir()
    )


def test_switching_provider_by_set_names_the_override(project: ProjectDir) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: basic_target("http://127.0.0.1:1"),
        }
    )
    result = project.build(TARGET, "--set", "teachers.main.provider=llamacpp", expect=2)
    assert "(after --set teachers.main.provider=llamacpp)" in result.stderr
    assert "teachers.main.concurrency" in result.stderr
    assert "--set teachers.main.concurrency=null" in result.stderr
    assert "unknown key 'host'" not in result.stderr  # the old provider's keys are dropped
    model = project.build(
        TARGET,
        "--set",
        "teachers.main.provider=llamacpp",
        "--set",
        "teachers.main.concurrency=1",
        expect=2,
    )
    assert "unknown llamacpp model 'qwen2.5-coder:7b'" in model.stderr
    assert "(after --set teachers.main.provider=llamacpp)" in model.stderr
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: fdbuild[embedded]")
    project.gen({"student.gguf": "not loaded by a dry run, only hashed"})
    switch = ("--set", "teachers.main.provider=llamacpp", "--set", "teachers.main.concurrency=null")
    plan = project.build(
        TARGET, *switch, "--set", "teachers.main.model_path=../student.gguf", "--dry-run"
    )
    assert "0 cached, 6 to compute" in plan.stdout


# -- the embedded teacher: a renamed byte-identical GGUF is the same teacher


def quickstart(project: ProjectDir, rows: int = 3) -> Path:
    from fdbuild.providers.llamacpp import bundled_gguf_path

    try:
        gguf = bundled_gguf_path("smollm2-135m")
    except Exception as exc:
        pytest.skip(f"SmolLM2 model not installed: {exc}")
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    lines = (REPO / "examples/wikisql_mini/train.jsonl").read_text().splitlines()[:rows]
    project.gen({"examples/wikisql_mini/small.jsonl": "\n".join(lines) + "\n"})
    text = (REPO / "targets/quickstart.yaml").read_text()
    text = text.replace("train.jsonl", "small.jsonl").replace("\n    n: 4 ", "\n    n: 1 ")
    assert "\n    n: 1 " in text  # one candidate per question keeps the real model quick
    project.gen({"targets/quickstart.yaml": text})
    return gguf


@pytest.mark.embedded
def test_born_again_with_a_local_gguf(project: ProjectDir, monkeypatch) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: fdbuild[embedded]")
    monkeypatch.setenv("FDBUILD_CACHE_DIR", str(project.root / "memo"))
    gguf = quickstart(project)
    first = project.build("targets/quickstart.yaml", "--json").json()
    assert first["teacher_calls"] == 3
    shutil.copyfile(gguf, project.root / "student-1.gguf")  # same bytes, another name

    swap = ("--set", "teachers.main.model_path=../student-1.gguf")
    plan = project.build("targets/quickstart.yaml", *swap, "--dry-run")
    assert "unchanged" in plan.stdout and "to compute" not in plan.stdout
    student = project.build("targets/quickstart.yaml", *swap, "--json").json()
    assert student["teacher_calls"] == 0  # keyed by the file's digest, not its name
    record = project.cli("show", "@", "--json").json()
    assert record["teachers"]["main"]["model"] == "student-1"
    assert record["teachers"]["main"]["digest"].startswith("sha256:")

    # --offline rebuilds either iteration: an in-process teacher needs no recorded digest
    assert (
        project.build("targets/quickstart.yaml", "--offline", "--json").json()["teacher_calls"] == 0
    )
    again = project.build("targets/quickstart.yaml", *swap, "--offline", "--json").json()
    assert again["teacher_calls"] == 0

    missing = project.build(
        "targets/quickstart.yaml", "--set", "teachers.main.model_path=nope.gguf", expect=2
    )
    assert "(after --set teachers.main.model_path=nope.gguf)" in missing.stderr
    assert "is not a file" in missing.stderr
    both = project.build(
        "targets/quickstart.yaml", *swap, "--set", "teachers.main.model=smollm2-135m", expect=2
    )
    assert "exactly one of 'model'" in both.stderr and "KEY=null" in both.stderr
