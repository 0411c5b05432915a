"""Artifact verification: the digest of an artifact's bytes, recorded when it was written,
checked before its rows are read.

Beside every artifact ``objects/ab/<name>.parquet`` its writer puts a sidecar
``<name>.parquet.sum`` (JSON: ``schema``, ``bytes`` = xxh3_128 of the file, ``size``,
``rows``), written atomically *before* the Parquet file is published, so a published
artifact always has one. The artifact's name is the digest of its rows (what it means);
the sidecar's digest is of its bytes (what is on disk). Checking bytes is one streaming
xxh3 pass (memory bandwidth), far cheaper than re-hashing rows, and stronger: any changed
byte fails it.

Three levels, by what the caller is about to do:

- ``looks_intact``: the file and its sidecar exist and the size matches (two ``stat`` calls
  and a small read). Enough for a memo hit, which reads no rows.
- ``verify_artifact``: the bytes digest. Required before reading rows.
- ``verify_artifact(deep=True)``: also opens the Parquet file, reads every row and
  compares the rows' digest with the name (``fdbuild doctor``).

An artifact without a sidecar (written before sidecars existed, or its sidecar lost or
garbled) is checked by its rows digest instead; when that matches, the caller may write
the sidecar (``adopt``), so the expensive check happens once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdbuild.keys import HASH_PREFIX, RowsDigest, file_digest
from fdbuild.store.atomic import atomic_write_text

SIDECAR_SUFFIX = ".sum"
SUM_SCHEMA = 1


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one artifact."""

    ok: bool
    reason: str = ""
    """Why it is bad (empty when ok)."""
    legacy: bool = False
    """It had no usable sidecar: checked by its rows digest."""
    bytes_digest: str | None = None
    size: int = 0
    rows: int | None = None
    suspect_writer: bool = False
    """Bytes as written, yet the rows' digest differs from the name: a fdbuild bug (a
    value that does not survive Parquet), not damage. Never quarantined."""


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, bytes_digest: str, size: int, rows: int) -> None:
    record = {"schema": SUM_SCHEMA, "bytes": bytes_digest, "size": size, "rows": rows}
    atomic_write_text(sidecar_path(path), json.dumps(record, sort_keys=True) + "\n")


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar of an artifact, or None when it is missing or not a valid sidecar (the
    artifact is then checked like a legacy one)."""
    try:
        record = json.loads(sidecar_path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("schema") != SUM_SCHEMA
        or not isinstance(record.get("bytes"), str)
        or not isinstance(record.get("size"), int)
    ):
        return None
    return record


def name_digest(path: Path) -> str:
    """The rows digest an artifact's file name promises."""
    return HASH_PREFIX + path.name.removesuffix(".parquet")


def looks_intact(path: Path) -> bool:
    """Cheap check for a memo hit: exists, has a sidecar, and the size matches it. A legacy
    artifact (no sidecar) passes when it exists: its rows are checked when first read."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    record = read_sidecar(path)
    return record is None or record["size"] == size


def rows_digest(path: Path) -> tuple[str, int]:
    """Digest and count of an artifact's rows, as its writer computed them (raises OSError or
    ArrowInvalid when the file is not readable Parquet)."""
    import pyarrow.parquet as pq

    digest = RowsDigest()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        digest.update(batch.to_pylist())
    return digest.hexdigest(), digest.count


def _read_rows(path: Path) -> tuple[str | None, int | None, str]:
    """(rows digest, count, error) without raising."""
    import pyarrow as pa

    try:
        digest, count = rows_digest(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return None, None, f"not readable Parquet ({exc})"
    return digest, count, ""


def verify_artifact(path: Path, *, deep: bool = False) -> Verdict:
    """Check one artifact file. Never raises for a damaged or missing file: says why.

    ``deep`` adds reading every row (readable Parquet, rows digest equal to the name)."""
    try:
        size = path.stat().st_size
    except OSError:
        return Verdict(False, "missing")
    record = read_sidecar(path)
    if record is None:
        digest, count, error = _read_rows(path)
        if error:
            return Verdict(False, error, legacy=True, size=size)
        if digest != name_digest(path):
            return Verdict(
                False, f"rows digest {digest} differs from its name", legacy=True, size=size
            )
        return Verdict(True, legacy=True, bytes_digest=file_digest(path), size=size, rows=count)
    if record["size"] != size:
        return Verdict(False, f"size {size} bytes, {record['size']} when written", size=size)
    try:
        actual = file_digest(path)
    except OSError as exc:
        return Verdict(False, f"unreadable ({exc})", size=size)
    if actual != record["bytes"]:
        return Verdict(False, "bytes digest differs from the one recorded when written", size=size)
    rows = record.get("rows") if isinstance(record.get("rows"), int) else None
    if deep:
        digest, count, error = _read_rows(path)
        if error:  # bytes as written, yet unreadable: the writer's fault; still unusable
            return Verdict(False, error, bytes_digest=actual, size=size)
        if digest != name_digest(path):
            return Verdict(
                False,
                f"rows digest {digest} differs from its name although its bytes are as "
                "written (a fdbuild bug, not damage: please report it)",
                bytes_digest=actual,
                size=size,
                suspect_writer=True,
            )
        rows = count
    return Verdict(True, bytes_digest=actual, size=size, rows=rows)
