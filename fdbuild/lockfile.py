"""``fdbuild.lock``: per target, the latest run, its parent, the resolved inputs of every
node and the digests of what each produced. In a user's project it is meant to be
committed (this repository's own is not: see docs/lockfile.md).

Deterministic: sorted keys, no wall-clock fields (the run_id carries the time), long
texts as digests; written atomically and only when its content changed (STYLE H6).
Checked on read (``fdbuild.record_schema``): a lock that does not parse, is of another
schema or has the wrong shape stops the command with exit 2, naming the file, the line
and the key.

The lock is, in a fresh clone of a project, the only record of the latest run of each
target (``.fdbuild/runs/`` is local state). Before a build's lock replaces that entry,
``dump_lock`` keeps it as ``.fdbuild/runs/from-lock/<run_id>.json``, so the new run's
parent can still be shown and diffed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from fdbuild.keys import digest_text
from fdbuild.record_schema import BadLockfile, ShapeError, check_lock
from fdbuild.store.atomic import atomic_write_text

LOCK_SCHEMA = 1
FROM_LOCK_DIR = "from-lock"
_HEADER = "# fdbuild.lock: written by `fdbuild build`; commit it. Do not edit by hand.\n"


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside."""
    try:
        inside = Path(path).resolve().is_relative_to(Path.cwd().resolve())
        return os.path.relpath(path) if inside else str(path)
    except (OSError, ValueError):
        return str(path)


def load_lock(path: Path) -> dict[str, Any]:
    """The lock as a dict; an empty one when there is no file. Raises ``BadLockfile``
    (exit 2) for a lock that cannot be used; it is never overwritten then."""
    if not path.exists():
        return {"schema": LOCK_SCHEMA, "targets": {}}
    try:
        text = path.read_text(encoding="utf-8")
        data = YAML(typ="safe").load(text) or {}
    except Exception as exc:
        raise BadLockfile(
            f"{_shown(path)}: cannot parse ({exc}); restore it from git or delete it"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != LOCK_SCHEMA:
        raise BadLockfile(
            f"{_shown(path)}: unknown lock schema "
            f"{data.get('schema') if isinstance(data, dict) else '?'}"
            f" (this fdbuild writes schema {LOCK_SCHEMA})"
        )
    try:
        check_lock(data)
    except ShapeError as exc:
        line = _line_of(text, exc.key)
        where = f"{_shown(path)}:{line}" if line else _shown(path)
        raise BadLockfile(
            f"{where}: {exc}; restore it from git, or delete it (the next build writes a new one)"
        ) from None
    if data.get("targets") is None:
        data["targets"] = {}
    return data


def _line_of(text: str, key: tuple[str | int, ...]) -> int | None:
    """The 1-based line of ``key`` in the lock's YAML (only computed for an error: the
    round-trip loader that knows lines is slower than the safe one)."""
    try:
        node: Any = YAML().load(text)
        line = None
        for part in key:
            if isinstance(part, int):
                line = node.lc.item(part)[0] + 1
            else:
                line = node.lc.key(part)[0] + 1
            node = node[part]
        return line
    except Exception:
        return None


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def render_lock(data: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(_sorted(data), buf)
    return _HEADER + buf.getvalue()


def dump_lock(path: Path, data: dict[str, Any]) -> bool:
    """Write if changed; returns whether it wrote. Entries the new lock replaces whose run
    has no record in ``.fdbuild/runs/`` are kept there first (``keep_replaced``)."""
    text = render_lock(data)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == text:
        return False
    if old is not None:
        keep_replaced(path, old, data)
    atomic_write_text(path, text)
    return True


def from_lock_dir(lock_path: Path) -> Path:
    """Where runs known only from a lock are kept: ``.fdbuild/runs/from-lock/``."""
    return lock_path.parent / ".fdbuild" / "runs" / FROM_LOCK_DIR


def keep_replaced(lock_path: Path, old_text: str, new: dict[str, Any]) -> list[Path]:
    """Before the lock forgets a run it is the only record of (a fresh clone of a project
    with a committed lock: the run records stayed on the machine that built it), write
    what the old lock says of it as ``.fdbuild/runs/from-lock/<run_id>.json``.

    Costs two ``stat`` calls per target when the records are there (every build on the
    machine that made them); the old lock is parsed only when one is missing."""
    runs = lock_path.parent / ".fdbuild" / "runs"
    kept_dir = runs / FROM_LOCK_DIR
    wanted = [
        entry["parent"]
        for entry in new.get("targets", {}).values()
        if entry.get("parent")
        and not (runs / f"{entry['parent']}.json").exists()
        and not (kept_dir / f"{entry['parent']}.json").exists()
    ]
    if not wanted:
        return []
    try:
        old = YAML(typ="safe").load(old_text) or {}
        check_lock(old)
    except Exception:  # the old lock was read by this build; if not, keep nothing
        return []
    from fdbuild.records import lock_record

    written = []
    for target, entry in (old.get("targets") or {}).items():
        if entry.get("run") in wanted:
            record = lock_record(target, entry)
            path = kept_dir / f"{record['run_id']}.json"
            kept_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


def lock_view(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe as the lock shows it: long or multi-line texts become digests (a key
    ``K`` becomes ``K_digest``), in mappings and in lists alike (a ``messages:``
    conversation keeps its roles, each long content shown as ``content_digest``). A
    bare string in a list (``decode.stop``) is shown as it is."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if _long_text(value):
            out[f"{key}_digest"] = digest_text(value)
        else:
            out[key] = _view(value)
    return out


def _long_text(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > 120)


def _view(value: Any) -> Any:
    if isinstance(value, dict):
        return lock_view(value)
    if isinstance(value, list):  # mappings in lists too; bare strings (a stop list) stay
        return [_view(v) for v in value]
    return value


def latest_runs(data: dict[str, Any]) -> dict[str, str]:
    return {
        name: entry["run"] for name, entry in data.get("targets", {}).items() if entry.get("run")
    }
