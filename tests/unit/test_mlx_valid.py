"""mlx_jsonl never writes an empty train/valid file (issue 10): mlx_lm crashes on one
(IndexError in create_dataset) and reads a missing one as an empty set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from fdbuild.exports.mlx import MlxExport, goes_to_train
from fdbuild.spec.model import ExportNode
from tests.support.project import ProjectDir, basic_target, questions_jsonl

SCHEMA = pa.schema(
    [
        ("_id", pa.string()),
        ("_parent", pa.string()),
        ("_prompt", pa.string()),
        ("completion", pa.string()),
    ]
)


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {"_id": f"q{i}/0", "_parent": f"q{i}", "_prompt": f"Question {i}?", "completion": f"A{i}"}
        for i in range(count)
    ]


def export(folder: Path, data: list[dict[str, Any]], **options: Any) -> MlxExport:
    spec = ExportNode(kind="export", input="n", format="mlx_jsonl", path="mlx", options=options)
    exporter = MlxExport(spec)
    exporter.write(data, folder, SCHEMA)
    return exporter


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_train_ratio_one_writes_train_only(tmp_path: Path) -> None:
    folder = tmp_path / "mlx"
    exporter = export(folder, rows(5), train_ratio=1.0)
    assert names(folder) == ["train.jsonl"]
    assert len((folder / "train.jsonl").read_text().splitlines()) == 5
    assert exporter.manifest_extra()["split"] == {"train_ratio": 1.0, "train": 5, "valid": 0}
    assert set(exporter.files(folder)) == {"train.jsonl"}


def test_a_small_set_the_split_sends_all_to_train(tmp_path: Path) -> None:
    data = [r for r in rows(40) if goes_to_train(r["_parent"], 0.9)][:3]
    assert len(data) == 3
    folder = tmp_path / "mlx"
    export(folder, data)  # the default 0.9
    assert names(folder) == ["train.jsonl"]


def test_a_stale_valid_file_is_removed_when_valid_gets_no_rows(tmp_path: Path) -> None:
    folder = tmp_path / "mlx"
    export(folder, rows(40), train_ratio=0.5)
    assert names(folder) == ["train.jsonl", "valid.jsonl"]
    export(folder, rows(40), train_ratio=1.0)
    assert names(folder) == ["train.jsonl"]
    fresh = MlxExport(
        ExportNode(kind="export", input="n", format="mlx_jsonl", path="mlx", options={})
    )
    assert set(fresh.files(folder)) == {"train.jsonl"}  # what is on disk, for the memo check


def test_build_with_train_ratio_one_then_a_noop(project: ProjectDir, ollama_server) -> None:
    target = basic_target(ollama_server.url).replace(
        "    format: jsonl\n    path: out/answers.jsonl",
        "    format: mlx_jsonl\n    path: out/mlx\n    options: {train_ratio: 1.0}",
    )
    project.gen({"targets/data/questions.jsonl": questions_jsonl(6), "targets/basic.yaml": target})
    first = project.build("targets/basic.yaml", "--json").json()
    folder = project.root / "targets/out/mlx"
    assert names(folder) == ["train.jsonl"]
    manifest = json.loads((project.root / "targets/out/mlx.manifest.json").read_text())
    assert (
        manifest["split"]["valid"] == 0
        and manifest["records"] == first["nodes"]["export"]["rows_out"]
    )
    stamp = (folder / "train.jsonl").stat().st_mtime_ns
    again = project.build("targets/basic.yaml", "--json").json()
    assert again["teacher_calls"] == 0
    assert again["nodes"]["export"]["computed"] == 0  # one file is a current export
    assert (folder / "train.jsonl").stat().st_mtime_ns == stamp


def test_mlx_lm_loads_an_export_without_valid(tmp_path: Path) -> None:
    datasets = pytest.importorskip(
        "mlx_lm.tuner.datasets", reason="mlx_lm is not installed: pip install 'mlx[cpu]' mlx-lm"
    )
    folder = tmp_path / "mlx"
    export(folder, rows(5), train_ratio=1.0)

    class Args:  # the attributes load_local_dataset's create_dataset reads
        mask_prompt = False

    train, valid, test = datasets.load_local_dataset(folder, tokenizer=None, config=Args())
    assert len(train) == 5 and len(valid) == 0 and len(test) == 0
