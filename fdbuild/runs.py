"""Run records: one immutable JSON file per run, ``.fdbuild/runs/<run_id>.json``.

A run_id is ``YYYYMMDDTHHMMSSZ-xxxxxx``: sortable by time, unique by its random tail.
Runs are named on the command line by full id, unique prefix, ``@`` (the latest run of
the only/selected target), ``@~N`` (its N-th ancestor), or ``TARGET@`` / ``TARGET@~N``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from fdbuild.errors import PlanError, StoreError
from fdbuild.project import Project
from fdbuild.store.atomic import atomic_write_text

RUN_SCHEMA = 1
_REF = re.compile(r"^(?:(?P<target>[^@~\s]+)?@)(?:~(?P<n>\d+))?$")


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


def run_path(project: Project, run_id: str) -> Path:
    return project.runs_dir / f"{run_id}.json"


def write_run(project: Project, record: dict[str, Any]) -> Path:
    path = run_path(project, record["run_id"])
    if path.exists():
        raise StoreError(f"run record {path} exists already; run records are immutable")
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def read_run(project: Project, run_id: str) -> dict[str, Any]:
    path = run_path(project, run_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"no run record {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"run record {path} is unreadable: {exc}") from None


def list_runs(project: Project) -> list[str]:
    if not project.runs_dir.exists():
        return []
    return sorted(p.stem for p in project.runs_dir.glob("*.json"))


def chain(project: Project, run_id: str) -> list[dict[str, Any]]:
    """The run and its ancestors, newest first (stops at a missing record)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = run_id
    while current and current not in seen and run_path(project, current).exists():
        seen.add(current)
        record = read_run(project, current)
        out.append(record)
        current = record.get("parent")
    return out


def resolve_run(project: Project, name: str, latest: dict[str, str]) -> str:
    """A run name -> run_id. ``latest`` maps target name -> its latest run (from the lock).

    Every failure is a ``PlanError`` (exit 2) that lists what the name could have been:
    the targets for ``@`` forms, the matching or most recent runs for ids and prefixes.
    """
    m = _REF.match(name.strip())
    if m:
        return _resolve_ref(
            project, name, _target_name(m.group("target"), latest), m.group("n"), latest
        )
    runs = list_runs(project)
    if name in runs:
        return name
    matches = [r for r in runs if r.startswith(name)] if name else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PlanError(f"no run named '{name}'; {_candidates(project, runs[-5:], latest)}")
    raise PlanError(
        f"run prefix '{name}' is ambiguous: it matches {len(matches)} runs; "
        f"{_candidates(project, matches[-10:], latest, label='candidates')}"
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
    project: Project, name: str, target: str | None, n: str | None, latest: dict[str, str]
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
    runs = chain(project, latest[target])
    if steps >= len(runs):
        raise PlanError(
            f"'{name}': target '{target}' has only {len(runs)} run(s) in its chain "
            f"(use {target}@ .. {target}@~{max(len(runs) - 1, 0)}; `fdbuild log {target}` "
            "lists them)"
        )
    return runs[steps]["run_id"]


def _candidates(
    project: Project, run_ids: list[str], latest: dict[str, str], label: str = "recent runs"
) -> str:
    """``label: <id> (<target>), ...`` plus the ``TARGET@`` forms, for error messages."""
    shown = []
    for run_id in reversed(run_ids):
        try:
            target = read_run(project, run_id).get("target", "?")
        except (PlanError, StoreError):
            target = "?"
        shown.append(f"{run_id} ({target})")
    forms = ", ".join(f"{t}@" for t in sorted(latest))
    text = f"{label}: {', '.join(shown)}" if shown else "the project has no runs yet"
    return (
        text
        + (f"; or name a target's latest run: {forms}" if forms else "")
        + "; `fdbuild log` lists every run"
    )
