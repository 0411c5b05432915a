"""``fdbuild build --teacher-workers N``: the teacher calls are made in worker processes;
the build's state and exports are byte for byte a build's without them."""

from __future__ import annotations

import shutil

from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"


def test_teacher_workers_give_the_same_bytes(project: ProjectDir, ollama_server, tmp_path) -> None:
    files = {
        "targets/data/questions.jsonl": questions_jsonl(12),
        TARGET: basic_target(ollama_server.url),
    }
    project.gen(files)
    other = ProjectDir(tmp_path / "other")
    other.root.mkdir()
    other.gen(files)

    plain = project.build(TARGET, "--json").json()
    asked = ollama_server.generation_count
    spread = other.build(TARGET, "--teacher-workers", "2", "--json").json()
    assert ollama_server.generation_count == 2 * asked == 2 * 24
    assert spread["teacher_calls"] == plain["teacher_calls"] == 24
    assert other.read_bytes("targets/out/answers.jsonl") == project.read_bytes(
        "targets/out/answers.jsonl"
    )
    assert [n["digest"] for n in _lock_nodes(other)] == [n["digest"] for n in _lock_nodes(project)]
    # and the cache it left is a plain one: a rebuild without workers asks nobody
    assert other.build(TARGET, "--json").json()["teacher_calls"] == 0
    shutil.rmtree(other.root)


def _lock_nodes(project: ProjectDir) -> list[dict]:
    from ruamel.yaml import YAML

    lock = YAML(typ="safe").load(project.read("fdbuild.lock"))
    nodes = lock["targets"]["basic"]["nodes"]
    return [nodes[name]["output"] for name in sorted(nodes)]
