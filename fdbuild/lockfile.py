"""``fdbuild.lock``: per target, the latest run, its parent, the resolved inputs of every
node and the digests of what each produced. Meant to be committed.

Deterministic: sorted keys, no wall-clock fields (the run_id carries the time), long
texts as digests; written atomically and only when its content changed (STYLE H6).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from fdbuild.errors import LockfileError
from fdbuild.keys import digest_text
from fdbuild.store.atomic import atomic_write_text

LOCK_SCHEMA = 1
_HEADER = "# fdbuild.lock: written by `fdbuild build`; commit it. Do not edit by hand.\n"


def load_lock(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": LOCK_SCHEMA, "targets": {}}
    yaml = YAML(typ="safe")
    try:
        data = yaml.load(path.read_text(encoding="utf-8")) or {}
    except Exception as exc:
        raise LockfileError(
            f"{path}: cannot parse ({exc}); restore it from git or delete it"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != LOCK_SCHEMA:
        raise LockfileError(
            f"{path}: unknown lock schema {data.get('schema') if isinstance(data, dict) else '?'}"
            f" (this fdbuild writes schema {LOCK_SCHEMA})"
        )
    data.setdefault("targets", {})
    return data


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
    """Write if changed; returns whether it wrote."""
    text = render_lock(data)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(path, text)
    return True


def lock_view(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe as the lock shows it: long or multi-line texts become digests."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if isinstance(value, str) and ("\n" in value or len(value) > 120):
            out[f"{key}_digest"] = digest_text(value)
        elif isinstance(value, dict):
            out[key] = lock_view(value)
        else:
            out[key] = value
    return out


def latest_runs(data: dict[str, Any]) -> dict[str, str]:
    return {
        name: entry["run"] for name, entry in data.get("targets", {}).items() if entry.get("run")
    }
