"""A no-op build reuses the previous run's funnel instead of reading every artifact of the
chain again (issue 9: the no-op stays flat in the rows); any change counts again."""

from __future__ import annotations

import json
from typing import Any

import pytest

import fdbuild.funnel
from tests.support.project import ProjectDir, basic_target, questions_jsonl


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Digests the funnel reads, build after build (the real reader still answers)."""
    seen: list[str] = []
    real = fdbuild.funnel.artifact_reader

    def counting(store: Any) -> Any:
        read = real(store)

        def wrapped(digest: str | None, columns: Any) -> Any:
            seen.append(str(digest))
            return read(digest, columns)

        return wrapped

    monkeypatch.setattr(fdbuild.funnel, "artifact_reader", counting)
    return seen


def setup(project: ProjectDir, server: Any, **target: Any) -> None:
    project.gen(
        {
            "data/questions.jsonl": questions_jsonl(12),
            "basic.yaml": basic_target(server.url, **target),
        }
    )


def funnel_of(project: ProjectDir, result: Any) -> Any:
    run_id = result.json()["run_id"]
    record = json.loads(project.read(f".fdbuild/runs/{run_id}.json"))
    return record["reports"]["funnel"]


def test_a_no_op_copies_the_funnel_and_reads_no_artifact(project, ollama_server, reads):
    setup(project, ollama_server)
    first = funnel_of(project, project.build("basic.yaml", "--json"))
    assert reads and first and first[0]["stages"][0]["stage"] == "asked"
    reads.clear()
    again = project.build("basic.yaml", "--json")
    assert reads == []
    assert funnel_of(project, again) == first
    assert "funnel: asked 24" in project.build("basic.yaml").stdout  # still in the summary


def test_a_changed_rule_counts_again(project, ollama_server, reads):
    setup(project, ollama_server)
    first = funnel_of(project, project.build("basic.yaml", "--json"))
    reads.clear()
    setup(project, ollama_server, min_chars=5000, max_chars=9000)  # no reply passes now
    changed = funnel_of(project, project.build("basic.yaml", "--json"))
    assert reads
    assert changed != first and changed[0]["stages"][-1]["rows"] == 0


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_an_unreadable_previous_record_counts_again(project, ollama_server, reads, damage):
    setup(project, ollama_server)
    result = project.build("basic.yaml", "--json")
    first = funnel_of(project, result)
    record = project.root / ".fdbuild" / "runs" / f"{result.json()['run_id']}.json"
    if damage == "delete":
        record.unlink()
    else:
        record.write_text(record.read_text().replace('"funnel"', '"funnel": 7, "x"', 1))
    reads.clear()
    again = project.build("basic.yaml", "--json")
    assert reads and funnel_of(project, again) == first
