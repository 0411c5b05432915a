"""``mlx_jsonl``: FastDistill's ``WriteMlxDataset``: MLX chat data with a deterministic
sha256 train/valid split, written as the folder ``mlx_lm.lora --data DIR`` reads.

``path`` names a directory (FastDistill's ``output_dir``); it receives ``train.jsonl`` and
``valid.jsonl`` (options ``train_file`` / ``valid_file``). A side the split sends no row
to is left out (and a stale file of it removed), never written empty: mlx_lm (0.32,
``tuner/datasets.py``) reads a missing file as an empty set (training warns "Validation
set not found or empty" and runs without validation; a missing train set is its clear
"Training set not found or empty" error) but crashes with an IndexError on an empty
file (``create_dataset`` reads ``data[0]``). Moving a row to valid instead would not help:
mlx_lm's validation needs at least ``batch_size`` (default 4) rows. The manifest is
``<path>.manifest.json`` beside the folder, so the folder holds nothing mlx_lm does not
expect. Each line (parity with shared/reference/fastdistill.md 1.13)::

    {"messages": [{"role": "system", "content": ...}?, {"role": "user", "content": ...},
                  {"role": "assistant", "content": ...}],
     "metadata": {field: row[field] for field in metadata if field in row}}

Split: ``key = row[split_key]`` (a null key falls back to the row's compact sorted-key
JSON, as FastDistill's orjson fallback), and the row goes to train iff
``int.from_bytes(sha256(str(key))[:4], "big") / (2**32 - 1) < train_ratio``;
``train_ratio <= 0`` sends all to valid, ``>= 1`` all to train. The split depends only
on the key, so a row stays on its side across rebuilds and as the dataset grows.

Options and their FastDistill names: ``train_ratio`` (0.9), ``split_key``
(``sample_id_field``; default ``_parent``, the input row a candidate came from, so all
candidates of one question land on the same side, else ``_id``), ``metadata``
(``metadata_fields``; default ``[split_key]``), ``response`` (``assistant_field``; default
``completion``), ``template`` (``prompt_template``, in fdbuild's ``{column}`` syntax and
checked at load instead of rendering unknown names as empty; default: the prompt the
teacher saw), ``system`` (``system_prompt``; default: the teacher's system prompt; text,
or ``false`` for none), ``system_field`` (``system_prompt_field``).

A row of a ``messages:`` node writes its whole conversation (every turn sent, then the
reply) unless ``template`` is set, which renders one user turn instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fdbuild import columns as C
from fdbuild.exports import PathError
from fdbuild.exports.base import Exporter
from fdbuild.exports.turns import Turns, string_option, text, turn_columns
from fdbuild.store.atomic import publish, temp_path_for


def split_key_value(row: dict[str, Any], field: str) -> str:
    """The text hashed for the split: the key's ``str()``, or the row's JSON if null."""
    key = row.get(field)
    if key is None:
        return json.dumps(
            row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    return str(key)


def goes_to_train(key: str, train_ratio: float) -> bool:
    """FastDistill's rule, bit for bit."""
    if train_ratio <= 0:
        return False
    if train_ratio >= 1:
        return True
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big")
    return bucket / (2**32 - 1) < train_ratio


class MlxExport(Exporter):
    fmt = "mlx_jsonl"
    known_options = frozenset(
        {
            "train_ratio",
            "split_key",
            "metadata",
            "response",
            "template",
            "system",
            "system_field",
            "train_file",
            "valid_file",
        }
    )

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.counts: dict[str, int] = {}

    @classmethod
    def required_columns(cls, spec: Any) -> list[str]:
        super().required_columns(spec)
        if Path(spec.path).suffix in (".jsonl", ".json"):
            raise PathError(
                f"mlx_jsonl writes a folder (train.jsonl and valid.jsonl, as "
                f"`mlx_lm.lora --data DIR` reads it); path {spec.path!r} looks like "
                "a file: name a folder, e.g. ../out/mlx"
            )
        ratio = spec.options.get("train_ratio", 0.9)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise ValueError(f"option train_ratio: expected a number, got {ratio!r}")
        names = [
            string_option(spec.options, n, d)
            for n, d in (("train_file", "train.jsonl"), ("valid_file", "valid.jsonl"))
        ]
        if names[0] == names[1] or any("/" in n or n.startswith(".") for n in names):
            raise ValueError(
                f"options train_file/valid_file: two distinct plain file names, got {names}"
            )
        cols = turn_columns(spec.options)
        cols.append(string_option(spec.options, "response", C.COMPLETION))
        if "split_key" in spec.options:
            cols.append(string_option(spec.options, "split_key", ""))
        metadata = spec.options.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, list) or not all(isinstance(m, str) for m in metadata)
        ):
            raise ValueError(f"option metadata: expected a list of column names, got {metadata!r}")
        return cols

    def _names(self) -> tuple[str, str]:
        return (
            self.options.get("train_file", "train.jsonl"),
            self.options.get("valid_file", "valid.jsonl"),
        )

    def files(self, path: Path) -> dict[str, Path]:
        """The files written: after ``write``, the sides that got rows; for an exporter that
        did not write (checking an earlier export), the files on disk."""
        train, valid = self._names()
        if self.counts:
            sides = [(train, self.counts["train"]), (valid, self.counts["valid"])]
            return {name: path / name for name, rows in sides if rows}
        return {name: path / name for name in (train, valid) if (path / name).exists()}

    def fields(self, schema: Any) -> list[str]:
        return ["messages", "metadata"]

    def manifest_extra(self) -> dict[str, Any]:
        return {"split": {"train_ratio": self.options.get("train_ratio", 0.9), **self.counts}}

    def write(self, rows: Iterable[dict[str, Any]], path: Path, schema: Any) -> int:
        """Both files to temp names, then both published: a crash leaves the old pair."""
        split_key = self.options.get("split_key") or (
            C.PARENT if C.PARENT in schema.names else C.ID
        )
        metadata = self.options.get("metadata", [split_key])
        ratio = float(self.options.get("train_ratio", 0.9))
        response = self.options.get("response", C.COMPLETION)
        turns = Turns(self.options, system_default=None)
        path.mkdir(parents=True, exist_ok=True)
        targets = [path / name for name in self._names()]
        temps = [temp_path_for(p) for p in targets]
        self.counts = {"train": 0, "valid": 0}
        try:
            with (
                open(temps[0], "w", encoding="utf-8", newline="\n") as train,
                open(temps[1], "w", encoding="utf-8", newline="\n") as valid,
            ):
                for row in rows:
                    record = {
                        "messages": turns.messages(row, turns.user(row), text(row.get(response))),
                        "metadata": {f: row[f] for f in metadata if f in row},
                    }
                    side = (
                        "train"
                        if goes_to_train(split_key_value(row, split_key), ratio)
                        else "valid"
                    )
                    fh = train if side == "train" else valid
                    fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False, default=str))
                    fh.write("\n")
                    self.counts[side] += 1
            for tmp, final, side in zip(temps, targets, ("train", "valid"), strict=True):
                if self.counts[side]:
                    publish(tmp, final)
                elif final.exists():  # an earlier export's rows on a side that has none now
                    final.unlink()
        finally:
            for tmp in temps:
                if tmp.exists():
                    tmp.unlink()
        return self.counts["train"] + self.counts["valid"]
