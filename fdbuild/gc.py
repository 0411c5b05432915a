"""Garbage collection: keep what the kept runs reference, drop the rest.

Kept runs: the latest run of each target in fdbuild.lock and ``keep_runs - 1`` of its
ancestors. Referenced: their node artifacts, and every row-cache key found in those
artifacts' ``_key_<node>`` columns. Node memos pointing at dropped artifacts go too.

gc never deletes what it cannot prove unneeded. Row-cache entries are dropped only when
every kept artifact was read and verified: a kept artifact that is missing or damaged
(its ``_key_`` columns cannot be trusted) means some needed keys are unknown, so every
``g:``/``t:``/``e:`` entry stays (the warning says to run the build or
``fdbuild doctor --repair`` first). A kept run whose record is unreadable keeps the
digests the lock names for it. Artifacts, memos and temp files do not depend on ``_key_``
columns and are collected as usual.
"""

from __future__ import annotations

from typing import Any

from fdbuild.errors import FdbuildError
from fdbuild.lockfile import latest_runs, load_lock
from fdbuild.project import Project, StoreMutex
from fdbuild.runs import chain
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.rowcache import EVAL, GEN, MEMO, TRUNCATED, RowCache


def collect(project: Project, *, keep_runs: int = 1, dry_run: bool = False) -> dict[str, Any]:
    if not project.state_dir.exists():
        return {
            "artifacts": 0,
            "cache_entries": 0,
            "temp_files": 0,
            "kept_runs": 0,
            "warnings": [],
        }
    with StoreMutex(project):
        return _collect(project, keep_runs, dry_run)


def _kept_runs(
    project: Project, lock: dict[str, Any], keep_runs: int, warnings: list[str]
) -> list[dict[str, Any]]:
    """Kept run records; for a latest run whose record cannot be read, the lock's entry
    (it names every node's output digest)."""
    runs: list[dict[str, Any]] = []
    for target, run_id in latest_runs(lock).items():
        try:
            runs.extend(chain(project, run_id)[:keep_runs])
        except FdbuildError as exc:
            warnings.append(
                f"run record of {target} unreadable ({exc.message}); keeping what "
                "fdbuild.lock names for it (run `fdbuild doctor --repair`)"
            )
            entry = lock["targets"].get(target) or {}
            nodes = entry.get("nodes") if isinstance(entry, dict) else None
            if isinstance(nodes, dict):
                runs.append({"nodes": nodes})
    return runs


def _digests(runs: list[dict[str, Any]], *, export: bool) -> set[str]:
    out: set[str] = set()
    for r in runs:
        for n in (r.get("nodes") or {}).values():
            if not isinstance(n, dict) or (n.get("kind") == "export") != export:
                continue
            digest = (n.get("output") or {}).get("digest")
            if isinstance(digest, str) and digest:
                out.add(digest)
    return out


def _referenced_keys(
    artifacts: ArtifactStore, keep_digests: set[str], warnings: list[str]
) -> set[str] | None:
    """Every row-cache key in a ``_key_`` column of a kept artifact; None when some kept
    artifact is missing or fails verification (then no key may be called unreferenced)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys: set[str] = set()
    untrusted: list[str] = []
    for digest in sorted(keep_digests):
        verdict = artifacts.verify(digest)
        if not verdict.ok:
            untrusted.append(f"{digest} ({verdict.reason})")
            continue
        try:
            key_cols = [c for c in artifacts.schema(digest).names if c.startswith("_key_")]
            if not key_cols:
                continue
            table = pq.read_table(artifacts.path(digest), columns=key_cols)
        except (FdbuildError, OSError, pa.ArrowException) as exc:
            untrusted.append(f"{digest} ({exc})")
            continue
        for col in key_cols:
            keys.update(v for v in table.column(col).to_pylist() if v)
    if untrusted:
        shown = "; ".join(untrusted[:5]) + (
            f"; and {len(untrusted) - 5} more" if len(untrusted) > 5 else ""
        )
        warnings.append(
            f"{len(untrusted)} kept artifact(s) missing or damaged: {shown}. Kept every "
            "generation and evaluation in the cache (the rows behind them cannot be told "
            "apart); run `fdbuild doctor --repair` and build again, then gc"
        )
        return None
    return keys


def _collect(project: Project, keep_runs: int, dry_run: bool) -> dict[str, Any]:
    warnings: list[str] = []
    lock = load_lock(project.lock_path)
    runs = _kept_runs(project, lock, keep_runs, warnings)
    artifacts = ArtifactStore(project.objects_dir)
    keep_digests = _digests(runs, export=False)
    live = keep_digests | _digests(runs, export=True)
    keep_keys = _referenced_keys(artifacts, keep_digests, warnings)
    dropped = [d for d in artifacts.all_digests() if d not in keep_digests]
    orphans = list(artifacts.orphan_sidecars())
    cache = RowCache(project.cache_dir)
    try:
        stale: list[tuple[str, str]] = []
        if keep_keys is not None:
            stale = [
                (space, k)
                for space in (GEN, TRUNCATED, EVAL)
                for k in cache.keys(space)
                if k not in keep_keys
            ]
        stale_memos = [
            k for k in cache.keys(MEMO) if (cache.get(MEMO, k) or {}).get("digest") not in live
        ]
        temps = list(project.state_dir.rglob(".*.tmp"))
        if not dry_run:
            for digest in dropped:
                path = artifacts.path(digest)
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".sum").unlink(missing_ok=True)
            for side in orphans:
                side.unlink(missing_ok=True)
            for space, key in stale:
                cache.delete(space, key)
            for key in stale_memos:
                cache.delete(MEMO, key)
            for tmp in temps:
                tmp.unlink(missing_ok=True)
    finally:
        cache.close()
    if cache.bad:
        warnings.append(
            f"{len(cache.bad)} damaged cache record(s) dropped: {', '.join(cache.bad[:5])}"
        )
    return {
        "artifacts": len(dropped),
        "cache_entries": len(stale) + len(stale_memos),
        "temp_files": len(temps),
        "kept_runs": len(runs),
        "warnings": warnings,
    }
