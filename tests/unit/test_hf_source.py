"""format: hf: folders written by ``datasets.save_to_disk`` (written here with the real
library, to prove the layout is the one it writes) and folders of Parquet shards."""

from __future__ import annotations

from pathlib import Path

import datasets  # the dev extra, to write fixtures; never a runtime dependency
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fdbuild.errors import SpecError
from fdbuild.sources import peek_columns, read_source, source_format
from fdbuild.sources_hf import hf_digest, hf_files

ROWS = {"qid": ["a", "b", "c"], "question": ["one?", "two?", "three?"], "level": [1, 2, 3]}


def test_save_to_disk_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(folder))
    assert (folder / "state.json").is_file() and list(folder.glob("data-*.arrow"))
    assert source_format(folder, None) == "hf"
    assert peek_columns(folder, "hf") == ["qid", "question", "level"]
    table = read_source(folder, "hf")
    assert table.to_pydict() == ROWS


def test_save_to_disk_dataset_dict_needs_its_split(tmp_path: Path) -> None:
    folder = tmp_path / "dd"
    test_rows = {k: v[:1] for k, v in ROWS.items()}
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(ROWS), "test": datasets.Dataset.from_dict(test_rows)}
    ).save_to_disk(str(folder))
    assert read_source(folder, "hf", "test").to_pydict() == test_rows
    assert read_source(folder, "hf", "train").num_rows == 3
    with pytest.raises(SpecError, match="splits train, test; set 'split:'"):
        read_source(folder, "hf")
    with pytest.raises(SpecError, match="no split 'valid' \\(splits: train, test\\)"):
        hf_files(folder, "valid")


def test_many_shards_are_read_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    big = {"i": list(range(3000)), "text": [f"row {i}" for i in range(3000)]}
    datasets.Dataset.from_dict(big).save_to_disk(str(folder), num_shards=3)
    assert len(hf_files(folder, None).files) == 3
    assert read_source(folder, "hf").column("i").to_pylist() == big["i"]


def write_parquet(path: Path, rows: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)


def test_parquet_split_folders(tmp_path: Path) -> None:
    write_parquet(tmp_path / "train" / "0000.parquet", {k: v[:2] for k, v in ROWS.items()})
    write_parquet(tmp_path / "train" / "0001.parquet", {k: v[2:] for k, v in ROWS.items()})
    write_parquet(tmp_path / "test" / "0000.parquet", {k: v[:1] for k, v in ROWS.items()})
    assert read_source(tmp_path, "hf", "train").to_pydict() == ROWS
    assert read_source(tmp_path, "hf", "test").num_rows == 1
    with pytest.raises(SpecError, match="set 'split:'"):
        read_source(tmp_path, "hf")


def test_parquet_hub_names(tmp_path: Path) -> None:
    """The Hub's layout, as ``datasets`` writes with to_parquet per split."""
    data = tmp_path / "data"
    data.mkdir()
    datasets.Dataset.from_dict(ROWS).to_parquet(str(data / "train-00000-of-00001.parquet"))
    write_parquet(data / "validation-00000-of-00001.parquet", {k: v[:1] for k, v in ROWS.items()})
    assert read_source(tmp_path, "hf", "train").to_pydict() == ROWS
    assert hf_files(tmp_path, "validation").files == (data / "validation-00000-of-00001.parquet",)


def test_plain_parquet_folder_is_one_split(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", {k: v[:2] for k, v in ROWS.items()})
    write_parquet(tmp_path / "b.parquet", {k: v[2:] for k, v in ROWS.items()})
    assert read_source(tmp_path, "hf").to_pydict() == ROWS
    with pytest.raises(SpecError, match="no split 'train'"):
        hf_files(tmp_path, "train")


def test_digest_follows_the_chosen_split_only(tmp_path: Path) -> None:
    write_parquet(tmp_path / "train" / "0.parquet", ROWS)
    write_parquet(tmp_path / "test" / "0.parquet", ROWS)
    train = hf_digest(hf_files(tmp_path, "train"))
    write_parquet(tmp_path / "test" / "0.parquet", {k: v[:1] for k, v in ROWS.items()})
    assert hf_digest(hf_files(tmp_path, "train")) == train
    write_parquet(tmp_path / "train" / "1.parquet", ROWS)
    assert hf_digest(hf_files(tmp_path, "train")) != train


def test_empty_and_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no dataset here"):
        hf_files(tmp_path, None)
    (tmp_path / "state.json").write_text('{"_data_files": [{"filename": "gone.arrow"}]}')
    with pytest.raises(SpecError, match="gone.arrow, which is missing"):
        hf_files(tmp_path, None)
    with pytest.raises(SpecError, match="format hf reads a folder"):
        hf_files(tmp_path / "state.json", None)
