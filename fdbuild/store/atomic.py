"""Atomic file writes: a temp file in the same folder, fsync, then os.replace.

A reader sees the old file or the new one, never a half-written one, even after
kill -9. Left-over ``.*.tmp`` files are garbage that ``fdbuild gc`` removes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def publish(tmp: Path, path: Path) -> None:
    """Move a finished temp file into place (after fsync)."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, path)
