"""Issue 2 acceptance: what each edit costs in teacher requests, against the test server."""

from __future__ import annotations

import json

import pytest

from tests.support.project import DOWNSTREAM_TARGET, ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"


def setup(project: ProjectDir, server, **kw) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(30),
            TARGET: basic_target(server.url, **kw),
        }
    )


def requests_during(server, fn):
    before = server.generation_count
    result = fn()
    return server.generation_count - before, result


def export_bytes(project: ProjectDir) -> bytes:
    return project.read_bytes("targets/out/answers.jsonl")


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_edit_sequence_costs_exactly_what_it_invalidates(
    project: ProjectDir, ollama_server, provider: str
) -> None:
    def target(**kw):
        return basic_target(ollama_server.url, provider=provider, max_chars=150, **kw)

    project.gen({"targets/data/questions.jsonl": questions_jsonl(30), TARGET: target()})
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 60
    assert res.json()["teacher_calls"] == 60
    first = export_bytes(project)

    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 0 and res.json()["teacher_calls"] == 0
    assert export_bytes(project) == first

    project.gen({TARGET: target(template="Q: {question}\nA:")})
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 60 and res.json()["teacher_calls"] == 60
    assert export_bytes(project) != first

    project.gen({TARGET: target()})
    n, _ = requests_during(ollama_server, lambda: project.build(TARGET))
    assert n == 0
    assert export_bytes(project) == first

    # keep rule change: verdicts re-applied, nothing re-evaluated, no teacher call
    project.gen({TARGET: target(keep="{rule_reason: {in: [ok, too_long]}}")})
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    summary = res.json()
    assert n == 0
    assert summary["nodes"]["checked"]["computed"] == 0
    assert summary["nodes"]["export"]["rows_out"] == 60
    assert summary["nodes"]["export"]["rows_out"] > len(first.splitlines())
    assert export_bytes(project) != first

    project.gen({"targets/data/questions.jsonl": questions_jsonl(35)})
    n, _ = requests_during(ollama_server, lambda: project.build(TARGET))
    assert n == 10

    project.gen({TARGET: target(n=3, keep="{rule_reason: {in: [ok, too_long]}}")})
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 35 and res.json()["teacher_calls"] == 35

    if provider == "ollama":
        ollama_server.set_digest("qwen2.5-coder:7b", "b" * 64)
    else:  # OpenAI-compatible servers report no digest: the declared revision stands in
        project.gen(
            {TARGET: target(n=3, keep="{rule_reason: {in: [ok, too_long]}}", revision="r2")}
        )
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 105 and res.json()["teacher_calls"] == 105


def test_offline_and_dry_run_call_nothing(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--offline", "--json"))
    assert n == 0 and res.code == 0

    project.gen({"targets/data/questions.jsonl": questions_jsonl(32)})
    lock_before = project.read("fdbuild.lock")
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--offline", expect=None))
    assert n == 0
    assert res.code not in (0, 3)
    assert "t030/0" in res.stderr and "4 generation(s) not in the cache" in res.stderr
    assert project.read("fdbuild.lock") == lock_before

    runs_before = sorted((project.root / ".fdbuild/runs").iterdir())
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--dry-run"))
    assert n == 0
    assert "60 cached, 4 to compute" in res.stdout
    assert "source file changed" in res.stdout
    assert sorted((project.root / ".fdbuild/runs").iterdir()) == runs_before
    assert project.read("fdbuild.lock") == lock_before


def test_dry_run_explains_a_template_edit(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    project.gen({TARGET: basic_target(ollama_server.url, template="Q: {question}")})
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--dry-run"))
    assert n == 0
    assert "0 cached, 60 to compute" in res.stdout
    assert "rendered prompt changed" in res.stdout
    assert "questions                source    unchanged" in res.stdout


def test_json_summary_shape(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    summary = project.build(TARGET, "--json").json()
    assert set(summary) == {"run_id", "target", "nodes", "teacher_calls", "failed"}
    for node in summary["nodes"].values():
        assert set(node) == {
            "rows_in",
            "rows_out",
            "cached",
            "computed",
            "failed",
            "teacher_calls",
            "wall_s",
        }
    assert summary["nodes"]["answers"]["computed"] == 60
    lock = project.read("fdbuild.lock")
    assert summary["run_id"] in lock


@pytest.mark.parametrize("fault", ["500", "503", "disconnect", "midstream"])
def test_flaky_teacher_is_retried(project: ProjectDir, ollama_server, fault: str) -> None:
    setup(project, ollama_server)
    ollama_server.fail_every = 4
    ollama_server.fault = fault
    res = project.build(TARGET, "--json", expect=None)
    assert res.code == 0, res.stderr
    assert res.json()["failed"] == 0
    assert res.json()["teacher_calls"] == ollama_server.generation_count
    assert len(project.read("targets/out/answers.jsonl").splitlines()) == 60


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_failures_are_recorded_not_cached_and_retried(
    project: ProjectDir, ollama_server, provider: str
) -> None:
    setup(project, ollama_server, retries=0, provider=provider)
    ollama_server.fail_every = 4
    ollama_server.fault = "500"
    res = project.build(TARGET, "--json", expect=3)
    assert res.json()["failed"] == 15
    record = json.loads(
        (project.root / ".fdbuild/runs" / f"{res.json()['run_id']}.json").read_text()
    )
    assert len(record["failures"]) == 15
    assert {f["reason"] for f in record["failures"]} == {"http_500"}
    ollama_server.fail_every = None
    n, res = requests_during(ollama_server, lambda: project.build(TARGET, "--json"))
    assert n == 15 and res.json()["failed"] == 0
    assert len(project.read("targets/out/answers.jsonl").splitlines()) == 60


def test_truncated_replies_are_failures(project: ProjectDir, ollama_server) -> None:
    from tests.support.ollama_server import Reply

    setup(project, ollama_server)
    ollama_server.responder = lambda req: Reply(text="cut off", done_reason="length")
    res = project.build(TARGET, "--json", expect=3)
    assert res.json()["failed"] == 60
    ollama_server.responder = lambda req: Reply(text="a complete answer here")
    n, _ = requests_during(ollama_server, lambda: project.build(TARGET))
    assert n == 60


def test_on_truncation_keep_then_fail_asks_again(project: ProjectDir, ollama_server) -> None:
    from tests.support.ollama_server import Reply

    setup(project, ollama_server)
    ollama_server.responder = lambda req: Reply(text="a reply cut short", done_reason="length")
    keep = basic_target(ollama_server.url).replace(
        "    n: 2\n", "    n: 2\n    on_truncation: keep\n"
    )
    project.gen({TARGET: keep})
    res = project.build(TARGET, "--json")
    assert res.json()["failed"] == 0 and ollama_server.generation_count == 60
    rows = [json.loads(line) for line in project.read("targets/out/answers.jsonl").splitlines()]
    assert {r["done_reason"] for r in rows} == {"length"}
    project.build(TARGET)
    assert ollama_server.generation_count == 60
    # back to the default policy: a truncated reply is a failure, so the teacher is asked again
    project.gen({TARGET: basic_target(ollama_server.url)})
    res = project.build(TARGET, "--json", expect=3)
    assert ollama_server.generation_count == 120 and res.json()["failed"] == 60


def test_bad_parent_fails_before_any_work(project: ProjectDir, ollama_server) -> None:
    setup(project, ollama_server)
    res = project.build(TARGET, "--parent", "nosuchrun", expect=2)
    assert "nosuchrun" in res.stderr
    assert ollama_server.generation_count == 0
    assert not (project.root / "targets/out/answers.jsonl").exists()


def test_offline_after_a_cross_file_build(project: ProjectDir, ollama_server) -> None:
    downstream = DOWNSTREAM_TARGET
    setup(project, ollama_server)
    project.gen({"targets/down.yaml": downstream})
    project.build("targets/down.yaml")
    res = project.build("targets/down.yaml", "--offline", "--json")
    assert res.json()["teacher_calls"] == 0
    assert "basic#main" in project.read("fdbuild.lock")
