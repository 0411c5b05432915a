"""``--set teachers.X.host=URL`` replaces a file's ``hosts:`` pool (and ``hosts`` a
``host``), as ``model_path`` replaces ``model``: they are one choice, never both."""

from __future__ import annotations

from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"


def test_set_host_replaces_the_pool(project: ProjectDir, make_ollama_server) -> None:
    used, unused = make_ollama_server(), make_ollama_server()
    text = basic_target(unused.url).replace(f"host: {unused.url}", f"hosts: [{unused.url}]")
    project.gen({"targets/data/questions.jsonl": questions_jsonl(3), TARGET: text})
    res = project.build(TARGET, "--set", f"teachers.main.host={used.url}", "--json")
    assert res.json()["failed"] == 0
    assert used.generation_count == 6 and unused.generation_count == 0


def test_set_hosts_replaces_the_host(project: ProjectDir, make_ollama_server) -> None:
    used, unused = make_ollama_server(), make_ollama_server()
    project.gen(
        {"targets/data/questions.jsonl": questions_jsonl(3), TARGET: basic_target(unused.url)}
    )
    res = project.build(TARGET, "--set", f"teachers.main.hosts=[{used.url}]", "--json")
    assert res.json()["failed"] == 0
    assert used.generation_count == 6 and unused.generation_count == 0
