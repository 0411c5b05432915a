"""Issue 12 acceptance for sources: ``sample:`` is stable as the file grows and only its
rows reach the teacher; ``sample: {n}`` is the same rows every build; ``where:`` filters
before anything is sent; ``format: hf`` folders build with ``split:``."""

from __future__ import annotations

import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from fdbuild.sampling import in_fraction
from tests.support.project import ProjectDir, questions_jsonl

TARGET = "targets/sampled.yaml"


def target(host: str, source: str) -> str:
    return f"""fdbuild: 1
name: sampled
teachers:
  main:
    model: qwen2.5-coder:7b
    host: {host}
nodes:
  questions:
    kind: source
{source}
  answers:
    kind: generate
    input: questions
    teacher: main
    template: "Question: {{question}}"
    decode: {{seed: 1, num_predict: 50}}
  rows:
    kind: export
    input: questions
    format: jsonl
    path: out/rows.jsonl
  answered:
    kind: export
    input: answers
    format: jsonl
    path: out/answers.jsonl
"""


def jsonl_source(extra: str) -> str:
    return f"    path: data/questions.jsonl\n    id: task_id\n{extra}"


def source_ids(project: ProjectDir) -> list[str]:
    return [json.loads(x)["_id"] for x in project.read("targets/out/rows.jsonl").splitlines()]


def asked_ids(bodies: list[dict]) -> list[str]:
    """The source row each request was rendered from ("What is 7 plus 7?" -> t007)."""
    out = []
    for body in bodies:
        number = re.search(r"What is (\d+) plus", body["messages"][-1]["content"])
        assert number is not None
        out.append(f"t{int(number.group(1)):03d}")
    return out


def test_fraction_sample_is_stable_as_the_file_grows(project: ProjectDir, ollama_server) -> None:
    sample = "    sample: {fraction: 0.1, seed: 3}\n"
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(300),
            TARGET: target(ollama_server.url, jsonl_source(sample)),
        }
    )
    project.build(TARGET)
    first = source_ids(project)
    assert set(first) == {f"t{i:03d}" for i in range(300) if in_fraction(3, 0.1, f"t{i:03d}")}
    assert 15 <= len(first) <= 45
    sent = ollama_server.generation_requests
    assert sorted(asked_ids(sent)) == sorted(first)  # rows outside the sample never sent

    with open(project.root / "targets/data/questions.jsonl", "a", encoding="utf-8") as fh:
        fh.write(questions_jsonl(100, start=300))
    project.build(TARGET)
    second = source_ids(project)
    assert set(first) <= set(second)
    appended = set(second) - set(first)
    assert appended and all(int(rid[1:]) >= 300 for rid in appended)
    asked_now = asked_ids(ollama_server.generation_requests[len(sent) :])
    assert sorted(asked_now) == sorted(appended)  # only the appended rows in the sample


def test_n_sample_gives_the_same_rows_on_every_build(project: ProjectDir, ollama_server) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(200),
            TARGET: target(ollama_server.url, jsonl_source("    sample: {n: 10, seed: 3}\n")),
        }
    )
    project.build(TARGET)
    first = source_ids(project)
    assert len(first) == 10
    assert sorted(asked_ids(ollama_server.generation_requests)) == sorted(first)
    shutil.rmtree(project.root / ".fdbuild")  # nothing memoized: the node runs again
    shutil.rmtree(project.root / "targets/out")
    project.build(TARGET)
    assert source_ids(project) == first
    project.gen({TARGET: target(ollama_server.url, jsonl_source("    sample: {n: 10, seed: 4}\n"))})
    project.build(TARGET)
    assert len(source_ids(project)) == 10 and source_ids(project) != first


def test_where_filters_before_the_teacher(project: ProjectDir, ollama_server) -> None:
    rows = "".join(
        json.dumps({"task_id": f"t{i:03d}", "question": f"What is {i} plus {i}?", "level": lvl})
        + "\n"
        for i, lvl in enumerate(["easy", "hard", "easy", "medium", "hard", "easy"])
    )
    where = "    where: {level: {in: [easy, medium]}}\n    sample: {n: 3, seed: 0}\n"
    project.gen(
        {
            "targets/data/questions.jsonl": rows,
            TARGET: target(ollama_server.url, jsonl_source(where)),
        }
    )
    project.build(TARGET)
    kept = source_ids(project)
    assert len(kept) == 3 and set(kept) <= {"t000", "t002", "t003", "t005"}
    assert sorted(asked_ids(ollama_server.generation_requests)) == sorted(kept)


def test_bad_where_and_split_fail_at_load(project: ProjectDir, ollama_server) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: target(ollama_server.url, jsonl_source("    where: {levle: easy}\n")),
        }
    )
    res = project.build(TARGET, expect=2)
    assert (
        "sampled.yaml:12: nodes.questions.where.levle: where rule on column 'levle'" in res.stderr
    )
    project.gen({TARGET: target(ollama_server.url, jsonl_source("    split: train\n"))})
    assert "'split:' is for 'format: hf'" in project.build(TARGET, expect=2).stderr
    bad = "    sample: {fraction: 0.1, n: 3}\n"
    project.gen({TARGET: target(ollama_server.url, jsonl_source(bad))})
    assert "exactly one of 'fraction' or 'n'" in project.build(TARGET, expect=2).stderr
    assert ollama_server.generation_count == 0


def test_hf_parquet_shards_with_split(project: ProjectDir, ollama_server) -> None:
    def shard(rel: str, numbers: range) -> None:
        path = project.root / "targets/data/hub" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "task_id": [f"t{i:03d}" for i in numbers],
                "question": [f"What is {i} plus {i}?" for i in numbers],
            }
        )
        pq.write_table(table, path)

    shard("data/train-00000-of-00002.parquet", range(0, 4))
    shard("data/train-00001-of-00002.parquet", range(4, 6))
    shard("data/test-00000-of-00001.parquet", range(100, 103))
    source = "    path: data/hub\n    format: hf\n    split: train\n    id: task_id\n"
    project.gen({TARGET: target(ollama_server.url, source)})
    project.build(TARGET)
    assert source_ids(project) == [f"t{i:03d}" for i in range(6)]
    assert sorted(asked_ids(ollama_server.generation_requests)) == source_ids(project)
    before = ollama_server.generation_count
    shard("data/test-00000-of-00001.parquet", range(100, 110))  # another split changed
    res = project.build(TARGET, "--json")
    assert ollama_server.generation_count == before and res.json()["teacher_calls"] == 0
    project.gen({TARGET: target(ollama_server.url, source.replace("train", "test"))})
    project.build(TARGET)
    assert source_ids(project) == [f"t{i:03d}" for i in range(100, 110)]


def test_hf_save_to_disk_dataset_dict(project: ProjectDir, ollama_server) -> None:
    import datasets  # the dev extra writes the fixture; fdbuild reads it with pyarrow

    def split(numbers: range) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "task_id": [f"t{i:03d}" for i in numbers],
                "question": [f"What is {i} plus {i}?" for i in numbers],
            }
        )

    folder = project.root / "targets/data/saved"
    datasets.DatasetDict({"train": split(range(50)), "test": split(range(200, 205))}).save_to_disk(
        str(folder)
    )
    source = "    path: data/saved\n    format: hf\n    split: train\n    id: task_id\n"
    project.gen({TARGET: target(ollama_server.url, source + "    sample: {n: 5, seed: 3}\n")})
    project.build(TARGET)
    kept = source_ids(project)
    assert len(kept) == 5 and all(int(r[1:]) < 50 for r in kept)
    assert sorted(asked_ids(ollama_server.generation_requests)) == sorted(kept)
