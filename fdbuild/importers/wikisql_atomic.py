"""Atomic output files: written to a temp file beside the destination, then moved in place.

A temp file in the destination folder is on the same filesystem, so ``os.replace`` into
place is atomic: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 would stick)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_path(out: Path, name: str) -> Path:
    """An empty temp file next to its destination, so os.replace into place is atomic."""
    handle, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(tmp, _file_mode())
    return Path(tmp)


def copy_db(source: Path, out: Path, name: str) -> Path:
    """Copy the db next to its destination (same filesystem) so os.replace is atomic."""
    tmp = temp_path(out, name)
    with source.open("rb") as src_handle, tmp.open("wb") as dst_handle:
        shutil.copyfileobj(src_handle, dst_handle, length=1 << 20)
        dst_handle.flush()
        os.fsync(dst_handle.fileno())
    return tmp


def _dump_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(records: Sequence[Mapping[str, Any]], out: Path, name: str) -> Path:
    """Canonical JSON lines (sorted keys, no spaces, UTF-8) in a temp file beside ``name``."""
    tmp = temp_path(out, name)
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(_dump_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    return tmp
