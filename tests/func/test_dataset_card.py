"""Dataset cards: every export folder gets a README.md in the Hugging Face card format
whose ``configs`` ``datasets.load_dataset(folder)`` reads, for the sft, dpo and
multitask recipes; the card is deterministic and follows the exports."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import recipe_project, recipe_responder

RECIPES = ["text2sql_sft", "text2sql_candidates", "dpkd_pairs", "text2sql_rationale"]


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


@pytest.fixture
def load(tmp_path: Path, monkeypatch):
    """``datasets.load_dataset(folder, name)`` as a user calls it, caches in the temp dir."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datasets

    def run(folder: Path, name: str | None = None) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return datasets.load_dataset(str(folder), name, cache_dir=str(tmp_path / "hf/datasets"))

    return run


def header(card: Path) -> dict[str, Any]:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return YAML(typ="safe").load(text.split("---\n")[1])


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_load_dataset_reads_the_cards_configs(project: ProjectDir, server, load) -> None:
    targets = recipe_project(project, RECIPES)
    project.build(*targets)
    out = project.root / "out"
    card = out / "README.md"
    meta = header(card)
    names = [c["config_name"] for c in meta["configs"]]
    assert len(set(names)) == len(names) == 4
    by_file = {c["data_files"][0]["path"]: c["config_name"] for c in meta["configs"]}
    assert set(by_file) == {
        "text2sql_sft.jsonl",
        "dpkd_pairs.dpo.jsonl",
        "text2sql_rationale.multitask.jsonl",
        "text2sql_rationale.jsonl",
    }
    # a Parquet export in the same folder is named apart: datasets loads one format a folder
    assert 'load_dataset("parquet", data_files="text2sql_candidates.parquet")' in card.read_text()
    for file, name in by_file.items():
        data = load(out, name)
        assert list(data) == ["train"]
        records = jsonl(out / file)
        assert data["train"].num_rows == len(records) > 0
        assert data["train"][0] == records[0], file
    default = load(out)  # the first config is the default
    assert default["train"].num_rows == len(
        jsonl(out / meta["configs"][0]["data_files"][0]["path"])
    )
    # features as declared in dataset_info; e.g. the SFT messages are a list of structs
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    sft = info[by_file["text2sql_sft.jsonl"]]
    messages = next(f for f in sft["features"] if f["name"] == "messages")
    assert {f["name"] for f in messages["list"]} == {"role", "content"}
    rows = len(jsonl(out / "text2sql_sft.jsonl"))
    size = (out / "text2sql_sft.jsonl").stat().st_size
    assert sft["splits"] == [{"name": "train", "num_bytes": size, "num_examples": rows}]


def test_card_provenance_and_determinism(project: ProjectDir, server) -> None:
    targets = recipe_project(project, ["text2sql_sft"])
    project.build(*targets)
    card = project.root / "out/README.md"
    text = card.read_text(encoding="utf-8")
    assert "`text2sql_sft`" in text and DEFAULT_DIGEST in text and DEFAULT_MODEL in text
    for gate in ("rules", "parsed", "executed", "judged"):
        assert f"| `{gate}` |" in text
    assert '"min": 0.5' in text  # the judge's keep rule
    record = project.cli("show", "@", "--json").json()
    stages = record["reports"]["funnel"][0]["stages"]
    for stage in stages:  # the funnel the run recorded, stage by stage
        assert f"| {stage['stage']} | `{stage['node']}` | {stage['rows']} |" in text
    assert record["run_id"] not in text  # no run id: a rebuild must give the same bytes
    before = card.read_bytes()
    project.build(*targets)
    assert card.read_bytes() == before
    card.unlink()  # a lost card is written again, byte for byte, by the next build
    project.build(*targets)
    assert card.read_bytes() == before
    card.write_text(text + "edited\n")  # an edited card is put back
    project.build(*targets)
    assert card.read_bytes() == before


def test_a_foreign_readme_is_left_alone(project: ProjectDir, server) -> None:
    targets = recipe_project(project, ["text2sql_sft"])
    (project.root / "out").mkdir()
    (project.root / "out/README.md").write_text("# my notes\n")
    result = project.build(*targets)
    assert project.read("out/README.md") == "# my notes\n"
    assert "was not written by fdbuild" in result.stderr
    assert (project.root / "out/text2sql_sft.jsonl").exists()
