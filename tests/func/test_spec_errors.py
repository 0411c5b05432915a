"""Bad target files: exit 2, a message naming file, line and key, nothing written."""

from __future__ import annotations

import pytest

from tests.support.project import DOWNSTREAM_TARGET, ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
HOST = "http://127.0.0.1:9"


def build_error(project: ProjectDir, text: str, *args: str) -> str:
    project.gen({"targets/data/questions.jsonl": questions_jsonl(3), TARGET: text})
    res = project.build(TARGET, *args, expect=2)
    assert "Traceback" not in res.stderr
    assert not (project.root / "fdbuild.lock").exists()
    assert not (project.root / ".fdbuild").exists()
    return res.stderr


def test_unknown_key_names_line_and_suggests(project: ProjectDir) -> None:
    text = basic_target(HOST).replace("temperature: 0.7", "temprature: 0.7")
    err = build_error(project, text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "temprature" in ln)
    assert f"basic.yaml:{line}" in err
    assert "unknown key 'temprature'" in err and "did you mean 'temperature'" in err


def test_unknown_column_lists_available(project: ProjectDir) -> None:
    text = basic_target(HOST, template="Q: {qestion}")
    err = build_error(project, text)
    assert "'qestion'" in err and "answers" in err and "question" in err and "task_id" in err
    assert "basic.yaml:" in err


@pytest.mark.parametrize(
    "placeholder", ["{question.__class__}", "{question[0]}", "{question!r}", "{}"]
)
def test_only_plain_placeholders(project: ProjectDir, placeholder: str) -> None:
    err = build_error(project, basic_target(HOST, template=f"Q: {placeholder}"))
    assert "placeholder" in err


def test_missing_required_key(project: ProjectDir) -> None:
    text = basic_target(HOST).replace("    teacher: main\n", "")
    err = build_error(project, text)
    assert "missing required key 'teacher'" in err


def test_cycle_is_named(project: ProjectDir) -> None:
    text = basic_target(HOST).replace("input: questions", "input: kept")
    err = build_error(project, text)
    assert "cycle" in err and "basic#answers" in err


def test_bad_override_is_validated(project: ProjectDir) -> None:
    err = build_error(project, basic_target(HOST), "--set", "teachers.main.concurrency=zero")
    assert "--set teachers.main.concurrency=zero" in err
    err = build_error(project, basic_target(HOST), "--set", "nodes.nope.n=3")
    assert "nodes.nope" in err


def test_invalid_yaml(project: ProjectDir) -> None:
    err = build_error(project, "fdbuild: 1\nnodes:\n  a: [unclosed\n")
    assert "basic.yaml:" in err and "invalid YAML" in err


def test_duplicate_ids_are_named(project: ProjectDir) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3) + questions_jsonl(1),
            TARGET: basic_target(HOST),
        }
    )
    res = project.build(TARGET, expect=2)
    assert "duplicate id 't000'" in res.stderr


def test_unknown_gate_param_and_keep_field(project: ProjectDir) -> None:
    err = build_error(project, basic_target(HOST).replace("min_chars:", "min_char:"))
    assert "unknown param 'min_char'" in err
    err = build_error(project, basic_target(HOST, keep="{reason: ok}"))
    assert "keep rule on 'reason'" in err and "rule_reason" in err


def test_cross_file_input_and_missing_file(project: ProjectDir) -> None:
    upstream = basic_target(HOST)
    downstream = DOWNSTREAM_TARGET
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: upstream,
            "targets/down.yaml": downstream.replace("basic.yaml#", "nothere.yaml#"),
        }
    )
    res = project.build("targets/down.yaml", expect=2)
    assert "nothere.yaml" in res.stderr and "no such file" in res.stderr
    project.gen({"targets/down.yaml": downstream.replace("#checked", "#chekced")})
    res = project.build("targets/down.yaml", expect=2)
    assert "chekced" in res.stderr and "checked" in res.stderr


def test_cross_file_build_builds_upstream_first(project: ProjectDir, ollama_server) -> None:
    downstream = DOWNSTREAM_TARGET
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(5),
            TARGET: basic_target(ollama_server.url),
            "targets/down.yaml": downstream,
        }
    )
    summary = project.build("targets/down.yaml", "--json").json()
    assert ollama_server.generation_count == 10
    assert "basic#answers" in summary["nodes"]
    assert len(project.read("targets/out/down.jsonl").splitlines()) == 10
    # building the upstream target itself now costs nothing
    project.build(TARGET)
    assert ollama_server.generation_count == 10


def test_reading_an_export_is_refused(project: ProjectDir) -> None:
    text = (
        basic_target(HOST)
        + """  again:
    kind: select
    input: export
"""
    )
    err = build_error(project, text)
    assert "reads export" in err and "read the export's input 'kept' instead" in err
