"""Garbage collection: keep what the kept runs reference, drop the rest.

Kept runs: the latest run of each target in fdbuild.lock and ``keep_runs - 1`` of its
ancestors. Referenced: their node artifacts, and every row-cache key found in those
artifacts' ``_key_<node>`` columns. Node memos pointing at dropped artifacts go too.
"""

from __future__ import annotations

from typing import Any

from fdbuild.lockfile import latest_runs, load_lock
from fdbuild.project import Project, StoreMutex
from fdbuild.runs import chain
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.rowcache import EVAL, GEN, MEMO, TRUNCATED, RowCache


def collect(project: Project, *, keep_runs: int = 1, dry_run: bool = False) -> dict[str, Any]:
    if not project.state_dir.exists():
        return {"artifacts": 0, "cache_entries": 0, "temp_files": 0, "kept_runs": 0}
    with StoreMutex(project):
        return _collect(project, keep_runs, dry_run)


def _collect(project: Project, keep_runs: int, dry_run: bool) -> dict[str, Any]:
    lock = load_lock(project.lock_path)
    runs = [r for run_id in latest_runs(lock).values() for r in chain(project, run_id)[:keep_runs]]
    artifacts = ArtifactStore(project.objects_dir)
    keep_digests = {
        n["output"]["digest"]
        for r in runs
        for n in r["nodes"].values()
        if n["kind"] != "export" and n["output"].get("digest")
    }
    export_digests = {
        n["output"]["digest"]
        for r in runs
        for n in r["nodes"].values()
        if n["kind"] == "export" and n["output"].get("digest")
    }
    keep_keys: set[str] = set()
    for digest in keep_digests:
        if not artifacts.exists(digest):
            continue
        key_cols = [c for c in artifacts.schema(digest).names if c.startswith("_key_")]
        if not key_cols:
            continue
        import pyarrow.parquet as pq

        table = pq.read_table(artifacts.path(digest), columns=key_cols)
        for col in key_cols:
            keep_keys.update(v for v in table.column(col).to_pylist() if v)
    dropped = [d for d in artifacts.all_digests() if d not in keep_digests]
    cache = RowCache(project.cache_dir)
    try:
        stale = [
            (space, k)
            for space in (GEN, TRUNCATED, EVAL)
            for k in cache.keys(space)
            if k not in keep_keys
        ]
        live = keep_digests | export_digests
        stale_memos = [
            k for k in cache.keys(MEMO) if (cache.get(MEMO, k) or {}).get("digest") not in live
        ]
        temps = list(project.state_dir.rglob(".*.tmp"))
        if not dry_run:
            for digest in dropped:
                artifacts.path(digest).unlink(missing_ok=True)
            for space, key in stale:
                cache.delete(space, key)
            for key in stale_memos:
                cache.delete(MEMO, key)
            for tmp in temps:
                tmp.unlink(missing_ok=True)
    finally:
        cache.close()
    return {
        "artifacts": len(dropped),
        "cache_entries": len(stale) + len(stale_memos),
        "temp_files": len(temps),
        "kept_runs": len(runs),
    }
