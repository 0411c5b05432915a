"""Issue 5 acceptance: the paper recipes in targets/ build against the test server, their
exports load with the ``datasets`` library, and each edit costs what it invalidates."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import REPO, recipe_project, recipe_responder

STUDENT_DIGEST = "5" * 64


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


@pytest.fixture
def load_dataset(tmp_path: Path, monkeypatch):
    """``datasets.load_dataset`` as a user calls it, with its caches in the temp dir."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf/datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datasets

    def load(kind: str, path: Path) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return datasets.load_dataset(
                kind, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf/datasets")
            )

    return load


def served_by_ollama(path: Path) -> bool:
    """Targets whose teachers all use the ollama provider (the test server speaks it);
    e.g. quickstart.yaml runs an embedded model and is built by its own tests."""
    data = YAML(typ="safe").load(path.read_text())
    return all(
        (t or {}).get("provider", "ollama") == "ollama"
        for t in (data.get("teachers") or {}).values()
    )


def calls(server, fn):
    before = server.generation_count
    result = fn()
    return server.generation_count - before, result


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- all targets


def test_every_target_builds_and_rebuilds_with_no_teacher_call(project: ProjectDir, server) -> None:
    targets = [t for t in recipe_project(project) if served_by_ollama(project.root / t)]
    assert {
        "targets/text2sql_rationale.yaml",
        "targets/text2sql_multidecode.yaml",
        "targets/text2sql_candidates.yaml",
        "targets/dpkd_pairs.yaml",
        "targets/text2sql_logprobs.yaml",
    } <= set(targets)
    first = project.build(*targets, "--json").json()["runs"]
    assert server.generation_count > 0
    assert all(run["failed"] == 0 for run in first)
    out = project.root / "out"
    exports = sorted(
        p for p in out.iterdir() if not p.name.endswith(".json") and p.name != "README.md"
    )  # README.md: the folder's dataset card (fdbuild/exports/card.py)
    for path in exports:
        assert path.with_name(path.name + ".manifest.json").exists(), f"no manifest for {path.name}"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "report" not in p.name}

    n, res = calls(server, lambda: project.build(*targets, "--json"))
    assert n == 0
    assert [run["teacher_calls"] for run in res.json()["runs"]] == [0] * len(targets)
    assert {p: p.read_bytes() for p in before} == before  # exports and manifests, byte for byte

    n, res = calls(server, lambda: project.build(*targets, "--offline"))
    assert n == 0 and res.code == 0

    # a lost manifest is written again, with the same bytes, and nobody is asked
    manifest = out / "dpkd_pairs.dpo.jsonl.manifest.json"
    manifest.unlink()
    n, _ = calls(server, lambda: project.build("targets/dpkd_pairs.yaml"))
    assert n == 0 and manifest.read_bytes() == before[manifest]


# --------------------------------------------------------------------------- A


def test_step_by_step_exports_both_tasks(project: ProjectDir, server, load_dataset) -> None:
    (target,) = recipe_project(project, ["text2sql_rationale"])
    summary = project.build(target, "--json").json()
    assert summary["nodes"]["reasoned"]["computed"] == 40
    assert summary["failed"] == 0  # a reply without delimiters is data, not a failure
    rows = project.cli("show", "@", "--json").json()
    assert rows["nodes"]["answer_rules"]["stats"]["kept"] < 40

    fields = jsonl(project.root / "out/text2sql_rationale.jsonl")
    assert fields and all(r["rationale"] and r["answer"].startswith("SELECT") for r in fields)
    data = load_dataset("json", project.root / "out/text2sql_rationale.multitask.jsonl")
    assert len(data) == 2 * len(fields)
    assert data["task"][:2] == ["answer", "rationale"]
    answer, rationale = data[0]["messages"], data[1]["messages"]
    assert [m["role"] for m in answer] == ["user", "assistant"]
    assert answer[0]["content"].startswith("[label] Schema:")
    assert rationale[0]["content"].startswith("[rationale] Schema:")
    assert answer[0]["content"][len("[label] ") :] == rationale[0]["content"][len("[rationale] ") :]
    assert answer[1]["content"] == fields[0]["answer"]
    assert rationale[1]["content"] == fields[0]["rationale"]
    manifest = json.loads(project.read("out/text2sql_rationale.multitask.jsonl.manifest.json"))
    assert manifest["records"] == len(data) and manifest["input_rows"] == len(fields)
    assert manifest["tasks"] == {"answer": len(fields), "rationale": len(fields)}
    assert manifest["fields"] == ["id", "task", "messages"]
    from fdbuild.keys import file_digest

    assert manifest["digest"] == file_digest(
        project.root / "out/text2sql_rationale.multitask.jsonl"
    )
    assert "run_id" not in manifest


# --------------------------------------------------------------------------- B


def test_multidecode_votes_and_raising_n_asks_only_for_new_candidates(
    project: ProjectDir, server, load_dataset
) -> None:
    (target,) = recipe_project(project, ["text2sql_multidecode"])
    summary = project.build(target, "--json").json()
    assert summary["nodes"]["candidates"]["computed"] == 40 * 2 * 4
    seeds = {r["options"]["seed"] for r in server.generation_requests}
    assert seeds == {7, 8, 9, 10}
    record = project.cli("show", "@", "--json").json()
    vote = record["nodes"]["voted"]["stats"]["vote"]
    assert vote["inputs"] == 40 and vote["picked"] == summary["nodes"]["voted"]["rows_out"] > 30

    sft = load_dataset("json", project.root / "out/text2sql_multidecode.sft.jsonl")
    assert len(sft) == vote["picked"]
    assert sft[0]["messages"][-1]["content"].startswith("SELECT")
    mlx_dir = project.root / "out/text2sql_multidecode.mlx"
    train = jsonl(mlx_dir / "train.jsonl")
    valid = jsonl(mlx_dir / "valid.jsonl")
    assert len(train) + len(valid) == vote["picked"] and train and valid
    for side, records in (("train", train), ("valid", valid)):
        for rec in records:
            assert set(rec) == {"messages", "metadata"}
            assert rec["metadata"]["vote_share"] >= 0.5
            key = rec["metadata"]["_parent"].encode()
            bucket = int.from_bytes(hashlib.sha256(key).digest()[:4], "big") / (2**32 - 1)
            assert (bucket < 0.9) == (side == "train")
    assert len(load_dataset("json", mlx_dir / "train.jsonl")) == len(train)
    manifest = json.loads(project.read("out/text2sql_multidecode.mlx.manifest.json"))
    assert manifest["split"] == {"train_ratio": 0.9, "train": len(train), "valid": len(valid)}
    assert set(manifest["files"]) == {"train.jsonl", "valid.jsonl"}

    path = project.root / target
    path.write_text(path.read_text().replace("    n: 4 ", "    n: 8 "))
    before = server.generation_count
    summary = project.build(target, "--json").json()
    new = server.generation_requests[before:]
    assert len(new) == 40 * 2 * 4 == summary["teacher_calls"]
    assert {r["options"]["seed"] for r in new} == {11, 12, 13, 14}  # candidates 4..7
    assert summary["nodes"]["candidates"]["cached"] == 40 * 2 * 4


# --------------------------------------------------------------------------- D


def test_dpkd_builds_upstream_and_margin_edit_calls_nobody(
    project: ProjectDir, server, load_dataset
) -> None:
    recipe_project(project, ["text2sql_candidates", "dpkd_pairs"])
    summary = project.build("targets/dpkd_pairs.yaml", "--json").json()
    nodes = summary["nodes"]
    gen = "text2sql_candidates#candidates"
    assert nodes[gen]["computed"] == 160
    # candidates of one question that wrote the same SQL get the same judge request:
    # asked once (the reply is cached under that request's key and shared)
    judge_prompts = [
        r["messages"][-1]["content"]
        for r in server.generation_requests
        if "Candidate SQL:" in r["messages"][-1]["content"]
    ]
    assert len(set(judge_prompts)) == len(judge_prompts) < 160
    assert nodes["text2sql_candidates#judged"]["teacher_calls"] == len(judge_prompts)
    judged = nodes["text2sql_candidates#judged"]
    assert judged["computed"] + judged["cached"] == 160  # a later twin finds the evaluation
    assert summary["teacher_calls"] == server.generation_count == 160 + len(judge_prompts)
    pairs = load_dataset("json", project.root / "out/dpkd_pairs.dpo.jsonl")
    assert pairs.column_names == ["prompt", "chosen", "rejected"]
    assert len(pairs) == nodes["pairs"]["rows_out"] > 0
    first = pairs[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert (
        [m["role"] for m in first["chosen"]]
        == ["assistant"]
        == [m["role"] for m in first["rejected"]]
    )
    assert first["chosen"][0]["content"] != first["rejected"][0]["content"]
    stats = project.cli("show", "@", "--json").json()["nodes"]["pairs"]["stats"]["pairs"]
    assert stats["pairs"] == len(pairs) and stats["ties"] > 0
    assert (
        stats["inputs"]
        == stats["pairs"]
        + stats["ties"]
        + stats["below_margin"]
        + stats["single"]
        + stats["no_chosen"]
    )

    path = project.root / "targets/dpkd_pairs.yaml"
    path.write_text(path.read_text().replace("min_margin: 0.3", "min_margin: 0.6"))
    n, res = calls(server, lambda: project.build("targets/dpkd_pairs.yaml", "--json"))
    summary = res.json()
    assert n == 0 and summary["teacher_calls"] == 0
    assert summary["nodes"]["text2sql_candidates#judged"]["computed"] == 0
    assert summary["nodes"]["pairs"]["computed"] > 0
    assert summary["nodes"]["pairs"]["rows_out"] < len(pairs)
    scores = jsonl(project.root / "out/dpkd_pairs.dpo.jsonl")
    assert len(scores) == summary["nodes"]["pairs"]["rows_out"]


# --------------------------------------------------------------------------- C


def test_born_again_two_iterations(project: ProjectDir, server) -> None:
    server.add_model("student-1", STUDENT_DIGEST)
    (target,) = recipe_project(project, ["text2sql_rationale"])
    first = project.build(target, "--json").json()
    n, res = calls(
        server,
        lambda: project.build(
            target, "--set", "teachers.main.model=student-1", "--parent", "@", "--json"
        ),
    )
    second = res.json()
    assert n == 40 and {r["model"] for r in server.generation_requests[-40:]} == {
        "student-1:latest"
    }
    assert second["run_id"] != first["run_id"]

    log = project.cli("log", "text2sql_rationale").stdout
    newest, oldest = (
        next(line for line in log.splitlines() if line.lstrip().startswith(run))
        for run in (second["run_id"], first["run_id"])
    )
    assert log.index(newest) < log.index(oldest)  # newest first
    assert first["run_id"] in newest  # its parent
    assert f"student-1:latest@{STUDENT_DIGEST[:12]}" in newest
    assert "teachers.main.model=student-1" in newest
    assert f"qwen2.5-coder:7b@{DEFAULT_DIGEST[:12]}" in oldest
    shown = project.cli("show", "@").stdout
    assert "student-1" in shown and first["run_id"] in shown
    record = project.cli("show", "@", "--json").json()
    assert record["parent"] == first["run_id"]
    assert record["teachers"]["main"]["model"].startswith("student-1")
    assert record["overrides"] == ["teachers.main.model=student-1"]

    # the strong teacher's generations are still cached: going back costs nothing
    n, _ = calls(server, lambda: project.build(target, "--parent", first["run_id"]))
    assert n == 0

    if project.cli("diff", "--help", expect=None).code != 0:
        pytest.skip("fdbuild diff is not available yet")
    diff = project.cli("diff", first["run_id"], second["run_id"]).stdout
    assert "qwen2.5-coder:7b" in diff and "student-1" in diff


# --------------------------------------------------------------------------- logprobs


def test_logprobs_reach_parquet_as_per_token_lists(
    project: ProjectDir, server, load_dataset
) -> None:
    (target,) = recipe_project(project, ["text2sql_logprobs"])
    project.build(target)
    assert all(r["logprobs"] is True and r["top_logprobs"] == 5 for r in server.generation_requests)
    data = load_dataset("parquet", project.root / "out/text2sql_logprobs.parquet")
    assert len(data) > 0 and "logprobs" in data.column_names
    row = data[0]
    tokens = row["logprobs"]
    assert "".join(t["token"] for t in tokens) == row["completion"]
    assert all(len(t["top_logprobs"]) == 5 and t["logprob"] <= 0 for t in tokens)
    assert tokens[0]["top_logprobs"][0]["token"] == tokens[0]["token"]


def test_a_server_without_logprobs_is_a_clear_failure(
    project: ProjectDir, make_ollama_server, monkeypatch
) -> None:
    old = make_ollama_server(
        {DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder, supports_logprobs=False
    )
    monkeypatch.setenv("OLLAMA_HOST", old.url)
    (target,) = recipe_project(project, ["text2sql_logprobs"])
    res = project.build(target, "--json", expect=3)
    assert res.json()["failed"] == 40
    assert "logprobs were requested" in res.stderr
    record = project.cli("show", "@", "--json").json()
    assert {f["reason"] for f in record["failures"]} == {"logprobs_unsupported"}
    assert record["nodes"]["tokens"]["output"]["rows"] == 0  # no row with an empty column

    new = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", new.url)
    summary = project.build(target, "--json").json()
    assert summary["nodes"]["sql"]["computed"] == 40 and summary["failed"] == 0


def test_recipe_docs_exist() -> None:
    for page in ("step_by_step", "data_distillation", "born_again", "dpkd", "logprobs"):
        text = (REPO / f"docs/recipes/{page}.md").read_text()
        assert "fdbuild build" in text


# --------------------------------------------------------------------------- load errors


@pytest.mark.parametrize(
    "edit, key, message",
    [
        (
            ("input: text2sql_candidates.yaml#judged", "input: text2sql_candidates.yaml#questions"),
            "input",
            "must come from a generate node",
        ),
        (
            ("gates: [rules, parsed, executed]", "gates: [rules, parsd]"),
            "gates",
            "'parsd' is not a gate",
        ),
        (("response: sql ", "response: sqll "), "response", "'sqll'"),
    ],
)
def test_pairs_spec_errors_name_file_line_and_key(project: ProjectDir, edit, key, message) -> None:
    recipe_project(project, ["text2sql_candidates", "dpkd_pairs"])
    path = project.root / "targets/dpkd_pairs.yaml"
    text = path.read_text().replace(*edit)
    path.write_text(text)
    err = project.build("targets/dpkd_pairs.yaml", expect=2).stderr
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(f"{key}:"))
    assert f"dpkd_pairs.yaml:{line}" in err and message in err
    assert not (project.root / ".fdbuild").exists()


def test_mlx_export_path_must_be_a_folder(project: ProjectDir) -> None:
    (target,) = recipe_project(project, ["text2sql_multidecode"])
    path = project.root / target
    path.write_text(path.read_text().replace("text2sql_multidecode.mlx", "mlx.jsonl"))
    err = project.build(target, expect=2).stderr
    assert "writes a folder" in err and "text2sql_multidecode.yaml:" in err
