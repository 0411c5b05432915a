"""Issue 10: ``--offline`` rebuilds any iteration of a born-again chain, not only the one
whose teacher is the target's latest: the teachers' digests of older iterations come from
their run records."""

from __future__ import annotations

from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
STUDENT_DIGEST = "5" * 64


def test_offline_rebuilds_an_older_iteration_with_another_teacher(
    project: ProjectDir, ollama_server
) -> None:
    ollama_server.add_model("student-1", STUDENT_DIGEST)
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(4),
            TARGET: basic_target(ollama_server.url),
        }
    )
    first = project.build(TARGET, "--json").json()
    second = project.build(
        TARGET, "--set", "teachers.main.model=student-1", "--parent", "@", "--json"
    ).json()
    assert first["teacher_calls"] == 8 and second["teacher_calls"] == 8
    export = (project.root / "targets/out/answers.jsonl").read_bytes()
    project.gen({TARGET: basic_target("http://127.0.0.1:1")})  # no teacher from here on

    project.build(TARGET, "--set", "teachers.main.model=student-1", "--offline")
    assert (project.root / "targets/out/answers.jsonl").read_bytes() == export
    # the lock now names the student only; the first teacher's digest is in its run record
    teacher = project.build(TARGET, "--offline", "--json").json()
    assert teacher["teacher_calls"] == 0 and teacher["nodes"]["answers"]["cached"] == 8
    plan = project.build(TARGET, "--dry-run")
    assert "unchanged" in plan.stdout or "8 cached, 0 to compute" in plan.stdout
