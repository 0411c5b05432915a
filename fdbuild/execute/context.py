"""What a build carries from node to node: options, store, teachers, reporter, failures."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdbuild.events import NullReporter, Reporter
from fdbuild.project import Project
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.rowcache import RowCache


@dataclass(frozen=True)
class BuildOptions:
    """Typed options of one build (none of them is part of any key)."""

    dry_run: bool = False
    offline: bool = False
    parent: str | None = None
    retry_base_s: float = 0.5
    retry_cap_s: float = 20.0
    argv: tuple[str, ...] = ()
    identity_check_s: float = field(default_factory=lambda: identity_check_from_env())
    """Seconds between re-checks of the teachers' identities during a build
    (``$FDBUILD_IDENTITY_CHECK_S``, default 10; see fdbuild/execute/identity.py)."""
    jobs: int | None = None
    """Worker processes for CPU-bound checks (``--jobs``); None: the cores available."""
    executor: str = "local"
    """Where CPU-bound evaluations and parses run: ``local`` or ``ray`` (fdbuild/executors/)."""
    ray_address: str | None = None
    """``--ray-address``: Ray's own ``address``; None: ``ray.init()``'s default."""
    teacher_workers: int = 0
    """``--teacher-workers``: processes making HTTP teacher calls (fdbuild/execute/callers.py);
    0: the calls are made in this process."""


IDENTITY_CHECK_ENV = "FDBUILD_IDENTITY_CHECK_S"
DEFAULT_IDENTITY_CHECK_S = 10.0


def identity_check_from_env() -> float:
    """``$FDBUILD_IDENTITY_CHECK_S`` (seconds, > 0), else 10."""
    raw = os.environ.get(IDENTITY_CHECK_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_IDENTITY_CHECK_S
    except ValueError:
        return DEFAULT_IDENTITY_CHECK_S
    return value if value > 0 else DEFAULT_IDENTITY_CHECK_S


@dataclass
class Failure:
    node: str
    row_id: str
    reason: str
    detail: str = ""
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "row_id": self.row_id,
            "reason": self.reason,
            "detail": self.detail[:500],
            "attempts": self.attempts,
        }


@dataclass
class NodeStats:
    rows_in: int = 0
    rows_out: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    teacher_calls: int = 0
    wall_s: float = 0.0
    memo_hit: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    teacher_seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "cached": self.cached,
            "computed": self.computed,
            "failed": self.failed,
            "teacher_calls": self.teacher_calls,
            "wall_s": round(self.wall_s, 3),
        }
        return out


@dataclass
class NodeResult:
    """What a node produced, and what went into it."""

    digest: str | None
    rows: int
    recipe: dict[str, Any]
    key: str
    inputs: list[str | None]
    """Input digests; None for a dry-run export's (it writes nothing)."""
    stats: NodeStats
    failures: list[Failure] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    pending: bool = False
    """Dry run only: the output is unknown until upstream work runs."""


@dataclass
class BuildContext:
    project: Project
    options: BuildOptions
    reporter: Reporter = field(default_factory=NullReporter)
    cache: RowCache = field(init=False)
    artifacts: ArtifactStore = field(init=False)

    def __post_init__(self) -> None:
        readonly = self.options.dry_run
        self.cache = RowCache(self.project.cache_dir, readonly=readonly)
        self.artifacts = ArtifactStore(self.project.objects_dir)

    def path_for_record(self, path: Path) -> str:
        """Paths in the lock and run records are relative to the project root."""
        return self.project.relative(path)

    def close(self) -> None:
        self.cache.close()
