"""Run records: one immutable JSON file per run, ``.fdbuild/runs/<run_id>.json``.

A run_id is ``YYYYMMDDTHHMMSSZ-xxxxxx``: sortable by time, unique by its random tail.
Runs are named on the command line by full id, unique prefix, ``@`` (the latest run of
the only/selected target), ``@~N`` (its N-th ancestor), or ``TARGET@`` / ``TARGET@~N``.

Reading (``read_run``) checks the record's shape (``fdbuild.record_schema``): a record
that does not parse or has the wrong shape is a ``BadRunRecord`` (exit 2) naming the file
and the key. When a run's record is not in the checkout (a fresh clone of a project
whose ``fdbuild.lock`` is committed), what the lock records of it stands in: first a
copy kept by ``dump_lock`` in ``.fdbuild/runs/from-lock/``, then the lock's own entry.
Those records are marked ``from_lock`` and the commands that show them say so.

``RunReader`` is the tolerant reader of ``log`` and ``diff``: an unreadable record is
skipped with one warning naming the file (or, if the lock records that run, replaced by
what the lock says of it).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fdbuild.errors import PlanError, StoreError
from fdbuild.lockfile import FROM_LOCK_DIR, load_lock
from fdbuild.project import Project
from fdbuild.record_schema import BadRunRecord, ShapeError, check_run
from fdbuild.store.atomic import atomic_write_text

RUN_SCHEMA = 1
_REF = re.compile(r"^(?:(?P<target>[^@~\s]+)?@)(?:~(?P<n>\d+))?$")

Warn = Callable[[str], None]


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def run_path(project: Project, run_id: str) -> Path:
    return project.runs_dir / f"{run_id}.json"


def _kept_path(project: Project, run_id: str) -> Path:
    return project.runs_dir / FROM_LOCK_DIR / f"{run_id}.json"


def write_run(project: Project, record: dict[str, Any]) -> Path:
    path = run_path(project, record["run_id"])
    if path.exists():
        raise StoreError(f"run record {path} exists already; run records are immutable")
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def _shown(project: Project, path: Path) -> str:
    return project.relative(path)


def parse_run(project: Project, path: Path) -> dict[str, Any]:
    """Read and check one record file; ``BadRunRecord`` (exit 2) names the file and key."""
    shown = _shown(project, path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8
        detail = f"does not parse ({exc})"
        raise BadRunRecord(
            f"run record {shown} is unreadable: {detail}", path=shown, detail=detail
        ) from None
    try:
        check_run(data, path.stem)
    except ShapeError as exc:
        detail = str(exc)
        raise BadRunRecord(
            f"run record {shown} is unreadable: {detail}", path=shown, detail=detail
        ) from None
    return data


def _lock_entries(project: Project) -> dict[str, Any]:
    return load_lock(project.lock_path).get("targets") or {}


def from_lock(project: Project, run_id: str) -> dict[str, Any] | None:
    """What fdbuild.lock records of ``run_id`` (kept copy first), or None."""
    kept = _kept_path(project, run_id)
    if kept.exists():
        return parse_run(project, kept)
    from fdbuild.records import lock_record

    for target, entry in _lock_entries(project).items():
        if entry.get("run") == run_id:
            return lock_record(target, entry)
    return None


def read_run(project: Project, run_id: str) -> dict[str, Any]:
    """The run's record; without one in the checkout, what the lock records of it."""
    path = run_path(project, run_id)
    try:
        return parse_run(project, path)
    except FileNotFoundError:
        pass
    found = from_lock(project, run_id)
    if found is None:
        raise PlanError(f"no run record {_shown(project, path)}") from None
    return found


def list_runs(project: Project) -> list[str]:
    """Every run id with a record here (kept lock copies included), oldest first."""
    if not project.runs_dir.exists():
        return []
    ids = {p.stem for p in project.runs_dir.glob("*.json")}
    ids |= {p.stem for p in (project.runs_dir / FROM_LOCK_DIR).glob("*.json")}
    return sorted(ids)


def chain(project: Project, run_id: str) -> list[dict[str, Any]]:
    """The run and its ancestors, newest first (stops at a run with no record)."""
    return RunReader(project, warn=None).chain(run_id)


class RunReader:
    """Reads records for ``log`` and ``diff``, each at most once.

    With ``warn`` set, an unreadable record is not an error: the run is taken from what
    fdbuild.lock records of it when the lock has it, else skipped; either way ``warn``
    is called once per file. With ``warn=None`` (``gc``, ``build --parent``) it raises.
    """

    def __init__(self, project: Project, warn: Warn | None) -> None:
        self.project = project
        self.warn = warn
        self._seen: dict[str, dict[str, Any] | None] = {}
        self._warned: set[str] = set()
        self.unreadable: set[str] = set()  # run ids whose record was skipped

    def read(self, run_id: str) -> dict[str, Any] | None:
        """The record, or None when it is missing (or unreadable, with ``warn`` set)."""
        if run_id in self._seen:
            return self._seen[run_id]
        try:
            record: dict[str, Any] | None = read_run(self.project, run_id)
        except PlanError:
            record = None
        except BadRunRecord as exc:
            if self.warn is None:
                raise
            record = self._instead(run_id, exc)
        self._seen[run_id] = record
        return record

    def _instead(self, run_id: str, exc: BadRunRecord) -> dict[str, Any] | None:
        try:
            record = from_lock(self.project, run_id)
        except BadRunRecord:
            record = None
        if record is None:
            self.unreadable.add(run_id)
        if exc.path not in self._warned and self.warn is not None:
            self._warned.add(exc.path)
            using = (
                "using what fdbuild.lock records of the run instead"
                if record
                else "skipped; `fdbuild show` cannot show this run"
            )
            self.warn(f"run record {exc.path} is unreadable ({exc.detail}); {using}")
        return record

    def chain(self, run_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The run and its ancestors, newest first (at most ``limit``); stops at a run
        with no record."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        current: str | None = run_id
        while current and current not in seen and (limit is None or len(out) < limit):
            seen.add(current)
            record = self.read(current)
            if record is None:
                break
            out.append(record)
            current = record.get("parent")
        return out

    def why_missing(self, run_id: str) -> str:
        """``has no run record in this checkout`` or ``whose run record is unreadable``."""
        if run_id in self.unreadable:
            return "whose run record is unreadable"
        return "which has no run record in this checkout"

    def latest(self) -> dict[str, str]:
        """Target -> its latest run: from the lock; without a lock, per target the newest
        record that no other record names as its parent (unreadable ones skipped). Ids
        order runs by their start second only; the parent links break ties within one."""
        latest = {t: e["run"] for t, e in _lock_entries(self.project).items() if e.get("run")}
        if latest:
            return latest
        records = [r for r in map(self.read, list_runs(self.project)) if r is not None]
        parents = {r.get("parent") for r in records}
        for record in records:  # oldest first: later ones win
            if record["run_id"] not in parents:
                latest[record.get("target") or "?"] = record["run_id"]
        return latest


def resolve_run(
    project: Project, name: str, latest: dict[str, str], reader: RunReader | None = None
) -> str:
    """A run name -> run_id. ``latest`` maps target name -> its latest run (from the lock).

    Every failure is a ``PlanError`` (exit 2) that lists what the name could have been:
    the targets for ``@`` forms, the matching or most recent runs for ids and prefixes.
    """
    reader = reader or RunReader(project, warn=None)
    m = _REF.match(name.strip())
    if m:
        return _resolve_ref(
            reader, name, _target_name(m.group("target"), latest), m.group("n"), latest
        )
    runs = sorted(set(list_runs(project)) | set(latest.values()))
    if name in runs:
        return name
    matches = [r for r in runs if r.startswith(name)] if name else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PlanError(f"no run named '{name}'; {_candidates(reader, runs[-5:], latest)}")
    raise PlanError(
        f"run prefix '{name}' is ambiguous: it matches {len(matches)} runs; "
        f"{_candidates(reader, matches[-10:], latest, label='candidates')}"
    )


def _target_name(raw: str | None, latest: dict[str, str]) -> str | None:
    """``TARGET`` as written, or a target file's path (``targets/t.yaml@``) -> its name."""
    if raw is None or raw in latest:
        return raw
    stem = Path(raw).name
    for suffix in (".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    return stem if stem in latest else raw


def _resolve_ref(
    reader: RunReader, name: str, target: str | None, n: str | None, latest: dict[str, str]
) -> str:
    targets = (
        ", ".join(f"{t}@" for t in sorted(latest))
        or "none (no build yet; run `fdbuild build TARGET`)"
    )
    if target is None:
        if len(latest) != 1:
            raise PlanError(
                f"'{name}' is ambiguous: the project has {len(latest)} targets; "
                f"write TARGET{name} with one of: {targets}"
                if latest
                else f"'{name}': no runs yet (fdbuild.lock names no target); "
                "run `fdbuild build TARGET` first"
            )
        target = next(iter(latest))
    if target not in latest:
        raise PlanError(
            f"'{name}': no runs of target '{target}' in fdbuild.lock (targets: {targets})"
        )
    steps = int(n or 0)
    if steps == 0:  # the lock names it: nothing to read (``show @`` of a bad record says so)
        return latest[target]
    runs = reader.chain(latest[target], limit=steps + 1)
    if steps >= len(runs):
        behind = runs[-1].get("parent") if runs else latest[target]
        why = f"; the chain stops at {behind}, {reader.why_missing(behind)}" if behind else ""
        raise PlanError(
            f"'{name}': target '{target}' has only {len(runs)} run(s) in its chain{why} "
            f"(use {target}@ .. {target}@~{max(len(runs) - 1, 0)}; `fdbuild log {target}` "
            "lists them)"
        )
    return runs[steps]["run_id"]


def _candidates(
    reader: RunReader, run_ids: list[str], latest: dict[str, str], label: str = "recent runs"
) -> str:
    """``label: <id> (<target>), ...`` plus the ``TARGET@`` forms, for error messages."""
    shown = []
    for run_id in reversed(run_ids):
        try:
            record = reader.read(run_id)
        except StoreError:
            record = None
        shown.append(f"{run_id} ({(record or {}).get('target') or '?'})")
    forms = ", ".join(f"{t}@" for t in sorted(latest))
    text = f"{label}: {', '.join(shown)}" if shown else "the project has no runs yet"
    return (
        text
        + (f"; or name a target's latest run: {forms}" if forms else "")
        + "; `fdbuild log` lists every run"
    )
