"""``format: hf``: a Hugging Face dataset folder, read with pyarrow alone.

Two layouts are read, so that data prepared with ``datasets`` (which is not a dependency)
or downloaded from the Hub builds as it is:

* what ``Dataset.save_to_disk`` writes: ``state.json`` naming the Arrow IPC *stream*
  files (``data-00000-of-00001.arrow``) beside ``dataset_info.json``; a ``DatasetDict``
  adds ``dataset_dict.json`` and one such folder per split;
* a folder of Parquet shards: ``<split>/*.parquet``, files named as on the Hub
  (``data/train-00000-of-00002.parquet``: the split is the name before ``-NNNNN-of-``),
  or plain ``*.parquet`` (one unnamed split).

``split:`` picks one split; without it the folder must hold exactly one. The input digest
is that of the data files of the chosen split (their relative paths and contents), so a
change to another split does not rebuild this source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.errors import SpecError
from fdbuild.keys import content_hash, file_digest
from fdbuild.source_text import check_table

if TYPE_CHECKING:
    import pyarrow as pa

_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}\.parquet$")


@dataclass(frozen=True)
class HfFiles:
    """The data files of one split, in read order, and how to read them."""

    folder: Path
    split: str | None
    kind: str  # "arrow" (save_to_disk) or "parquet"
    files: tuple[Path, ...]


def hf_files(folder: Path, split: str | None) -> HfFiles:
    """The files a ``format: hf`` source reads. A missing split, an ambiguous folder or an
    empty one is a ``SpecError`` naming the folder and the splits it has."""
    if not folder.is_dir():
        raise SpecError(f"{folder}: format hf reads a folder (save_to_disk or Parquet shards)")
    if (folder / "dataset_dict.json").is_file():
        splits = _json(folder / "dataset_dict.json").get("splits") or []
        chosen = _choose(folder, split, [str(s) for s in splits])
        return HfFiles(folder, chosen, "arrow", _arrow_files(folder / chosen))
    if (folder / "state.json").is_file():
        own = _json(folder / "state.json").get("_split")
        if split is not None and own is not None and split != own:
            raise SpecError(f"{folder}: this saved dataset is split '{own}', not '{split}'")
        return HfFiles(folder, split or own, "arrow", _arrow_files(folder))
    by_split: dict[str | None, list[Path]] = {}
    for path in sorted(folder.rglob("*.parquet")):
        by_split.setdefault(_parquet_split(folder, path), []).append(path)
    if not by_split:
        raise SpecError(
            f"{folder}: no dataset here (no dataset_dict.json, state.json or *.parquet files)"
        )
    names = [s for s in by_split if s is not None]
    if None in by_split and (split is None or not names):
        if names:
            raise SpecError(
                f"{folder}: Parquet files both inside splits ({', '.join(names)}) and "
                "outside any; move them or point path: at one split's folder"
            )
        if split is not None:
            raise SpecError(f"{folder}: no split '{split}' (the Parquet files name no split)")
        return HfFiles(folder, None, "parquet", tuple(by_split[None]))
    chosen = _choose(folder, split, names)
    return HfFiles(folder, chosen, "parquet", tuple(by_split[chosen]))


def _choose(folder: Path, split: str | None, splits: list[str]) -> str:
    if split is None:
        if len(splits) == 1:
            return splits[0]
        raise SpecError(
            f"{folder}: the dataset has splits {', '.join(splits) or '(none)'}; set 'split:'"
        )
    if split not in splits:
        raise SpecError(f"{folder}: no split '{split}' (splits: {', '.join(splits) or 'none'})")
    return split


def _parquet_split(folder: Path, path: Path) -> str | None:
    match = _SHARD.match(path.name)
    if match:
        return match.group("split")
    rel = path.relative_to(folder).parts
    return rel[-2] if len(rel) > 1 else None


def _arrow_files(folder: Path) -> tuple[Path, ...]:
    state = folder / "state.json"
    if state.is_file():
        names = [f.get("filename") for f in _json(state).get("_data_files") or []]
        files = tuple(folder / n for n in names if isinstance(n, str))
        for path in files:
            if not path.is_file():
                raise SpecError(f"{state}: names data file {path.name}, which is missing")
        if files:
            return files
    files = tuple(sorted(folder.glob("*.arrow")))
    if not files:
        raise SpecError(f"{folder}: no .arrow data files (is this a save_to_disk folder?)")
    return files


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SpecError(f"{path}: expected a JSON object")
    return value


def hf_digest(found: HfFiles) -> str:
    """What the rows depend on: each data file's path (relative) and content."""
    return content_hash(
        {
            "split": found.split,
            "files": [
                [p.relative_to(found.folder).as_posix(), file_digest(p)] for p in found.files
            ],
        }
    )


def hf_columns(found: HfFiles) -> list[str]:
    """Column names from the first file's schema (no rows read)."""
    return list(_schema(found.kind, found.files[0]).names)


def _schema(kind: str, path: Path) -> pa.Schema:
    import pyarrow as pa

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        return pa.ipc.open_stream(pa.memory_map(str(path))).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise SpecError(f"{path}: cannot read {kind} data: {exc}") from None


def read_hf(found: HfFiles) -> pa.Table:
    """Every file of the split, concatenated in order, validated as text (an error names
    the file and the row index inside it)."""
    import pyarrow as pa

    tables = []
    for path in found.files:
        try:
            if found.kind == "parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(path)
            else:
                table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise SpecError(f"{path}: cannot read {found.kind} data: {exc}") from None
        check_table(table, path, found.kind)
        tables.append(table.replace_schema_metadata(None))
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SpecError(f"{found.folder}: the data files' schemas differ: {exc}") from None
