"""dpo_jsonl, mlx_jsonl and multitask_jsonl records and options, without a build."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from fdbuild.exports.dpo import DpoExport
from fdbuild.exports.mlx import MlxExport, goes_to_train, split_key_value
from fdbuild.exports.multitask import MultitaskExport
from fdbuild.spec.model import ExportNode

ROW = {
    "_id": "q1/0",
    "_parent": "q1",
    "_system": "Reply in the two-section format.",
    "_prompt": "Question: how many?",
    "rationale": "Count the rows.",
    "answer": "SELECT 1",
    "completion": "raw",
    "chosen": "SELECT 1",
    "rejected": "SELECT 2",
    "question": "how many?",
}


def spec(fmt: str, path: str = "out/x.jsonl", **options: Any) -> ExportNode:
    return ExportNode(kind="export", input="n", format=fmt, path=path, options=options)


def fastdistill_train(key: str, ratio: float) -> bool:
    """FastDistill 1.13, written out independently."""
    if ratio <= 0:
        return False
    if ratio >= 1:
        return True
    return (
        int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:4], "big") / (2**32 - 1) < ratio
    )


def test_mlx_split_matches_fastdistill_bit_for_bit() -> None:
    keys = [f"wikisql-train-{i:06d}" for i in range(500)]
    for ratio in (0.0, 0.1, 0.5, 0.9, 1.0, -1, 2):
        assert [goes_to_train(k, ratio) for k in keys] == [
            fastdistill_train(k, ratio) for k in keys
        ]
    assert 400 < sum(goes_to_train(k, 0.9) for k in keys) < 500


def test_mlx_split_key_falls_back_to_the_row_json() -> None:
    assert split_key_value({"a": 1, "k": 7}, "k") == "7"
    assert split_key_value({"b": "é", "a": None}, "a") == '{"a":null,"b":"é"}'


def test_mlx_writes_no_empty_file(tmp_path: Path) -> None:
    """mlx_lm crashes on an empty train/valid file; a missing one it handles (issue 10)."""
    schema = pa.schema(
        [("_id", pa.string()), ("_prompt", pa.string()), ("completion", pa.string())]
    )
    exporter = MlxExport(spec("mlx_jsonl", "out/mlx"))
    assert exporter.write([], tmp_path / "mlx", schema) == 0
    assert list((tmp_path / "mlx").iterdir()) == []
    assert exporter.files(tmp_path / "mlx") == {}
    assert exporter.manifest_extra() == {"split": {"train_ratio": 0.9, "train": 0, "valid": 0}}


def test_mlx_records_use_template_system_and_metadata(tmp_path: Path) -> None:
    schema = pa.schema([(k, pa.string()) for k in ROW])
    exporter = MlxExport(
        spec(
            "mlx_jsonl",
            "out/mlx",
            template="Q: {question}",
            system="Return SQL only.",
            response="answer",
            train_ratio=1,
            metadata=["_parent", "nope"],
        )
    )
    assert exporter.write([ROW], tmp_path / "mlx", schema) == 1
    (record,) = [
        json.loads(line) for line in (tmp_path / "mlx/train.jsonl").read_text().splitlines()
    ]
    assert record == {
        "messages": [
            {"role": "system", "content": "Return SQL only."},
            {"role": "user", "content": "Q: how many?"},
            {"role": "assistant", "content": "SELECT 1"},
        ],
        "metadata": {"_parent": "q1"},
    }


@pytest.mark.parametrize(
    "options, message",
    [
        ({"train_ratio": "most"}, "train_ratio"),
        ({"template": "Q: {question.x}"}, "template"),
        ({"train_file": "a.jsonl", "valid_file": "a.jsonl"}, "distinct"),
        ({"ratio": 0.5}, "unknown export option"),
    ],
)
def test_mlx_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MlxExport.required_columns(spec("mlx_jsonl", "out/mlx", **options))


def test_mlx_needs_a_folder_path() -> None:
    with pytest.raises(ValueError, match="writes a folder"):
        MlxExport.required_columns(spec("mlx_jsonl", "out/mlx.jsonl"))


def test_dpo_chat_and_text_styles() -> None:
    (chat,) = DpoExport(spec("dpo_jsonl")).records([ROW])
    assert chat == {
        "prompt": [
            {"role": "system", "content": ROW["_system"]},
            {"role": "user", "content": ROW["_prompt"]},
        ],
        "chosen": [{"role": "assistant", "content": "SELECT 1"}],
        "rejected": [{"role": "assistant", "content": "SELECT 2"}],
    }
    (nosys,) = DpoExport(spec("dpo_jsonl", system=False)).records([ROW])
    assert [m["role"] for m in nosys["prompt"]] == ["user"]
    (text,) = DpoExport(spec("dpo_jsonl", style="text")).records([ROW])
    assert text == {"prompt": ROW["_prompt"], "chosen": "SELECT 1", "rejected": "SELECT 2"}
    with pytest.raises(ValueError, match="style"):
        DpoExport.required_columns(spec("dpo_jsonl", style="pairs"))


def test_multitask_two_examples_per_row_with_the_paper_prefixes() -> None:
    answer, rationale = MultitaskExport(spec("multitask_jsonl")).records([ROW])
    assert answer == {
        "id": "q1/0/answer",
        "task": "answer",
        "messages": [
            {"role": "user", "content": "[label] Question: how many?"},
            {"role": "assistant", "content": "SELECT 1"},
        ],
    }
    assert rationale["messages"][0]["content"] == "[rationale] Question: how many?"
    assert rationale["messages"][1]["content"] == "Count the rows."
    exporter = MultitaskExport(spec("multitask_jsonl", style="text", answer_prefix="answer: "))
    first, _ = exporter.records([ROW])
    assert first == {
        "id": "q1/0/answer",
        "task": "answer",
        "prompt": "answer: Question: how many?",
        "completion": "SELECT 1",
    }


def test_multitask_skips_an_empty_rationale_and_counts_it() -> None:
    exporter = MultitaskExport(spec("multitask_jsonl"))
    records = list(exporter.records([{**ROW, "rationale": "  "}, ROW]))
    assert [r["task"] for r in records] == ["answer", "answer", "rationale"]
    assert exporter.manifest_extra() == {"tasks": {"answer": 2, "rationale": 1}}
