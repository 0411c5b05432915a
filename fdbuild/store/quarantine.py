"""Quarantine: where damaged state goes instead of being deleted or trusted.

A damaged artifact, an unreadable run record or a row cache SQLite cannot open is moved
(``os.replace``, same file system) to ``.fdbuild/quarantine/<stamp>-<6 hex>-<name>``,
with a note ``<same>.why.json`` saying where it came from, why, and when. Nothing reads
from the quarantine: the build heals by recomputing, and the files stay only so a person
can look at them (delete the folder by hand when done). Moving rather than deleting means
a false alarm never loses data.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from fdbuild.store.atomic import atomic_write_text

NOTE_SUFFIX = ".why.json"


def quarantine_dir(state_dir: Path) -> Path:
    return state_dir / "quarantine"


def quarantine(
    state_dir: Path, path: Path, reason: str, *, extra: dict[str, Any] | None = None
) -> Path:
    """Move ``path`` (a file or a folder) into the quarantine; returns where it went.

    A path that vanished meanwhile (another reader moved it) is not an error: the note is
    still written, so the move is explained."""
    folder = quarantine_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = folder / f"{stamp}-{secrets.token_hex(3)}-{path.name}"
    try:
        os.replace(path, dest)
    except FileNotFoundError:
        pass
    except OSError:  # another file system (a bind-mounted cache folder): copy, then remove
        shutil.move(str(path), str(dest))
    try:
        origin = path.relative_to(state_dir.parent).as_posix()
    except ValueError:
        origin = str(path)
    note = {
        "from": origin,
        "reason": reason,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    try:
        atomic_write_text(
            dest.with_name(dest.name + NOTE_SUFFIX),
            json.dumps(note, indent=2, sort_keys=True) + "\n",
        )
    except OSError:
        pass  # the note only explains; the move (no new space needed) is what matters
    return dest


def notes(state_dir: Path) -> list[dict[str, Any]]:
    """Every quarantine note (unreadable notes are skipped: they only explain)."""
    folder = quarantine_dir(state_dir)
    out: list[dict[str, Any]] = []
    if not folder.exists():
        return out
    for path in sorted(folder.glob("*" + NOTE_SUFFIX)):
        try:
            note = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(note, dict):
            out.append({**note, "file": path.name.removesuffix(NOTE_SUFFIX)})
    return out
