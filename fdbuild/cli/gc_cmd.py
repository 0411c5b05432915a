"""``fdbuild gc``: drop cache entries and artifacts that no kept run references."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "gc",
        help="drop cache entries and artifacts no run in the lock references",
        description="Delete row-cache entries and artifacts not referenced by the runs "
        "kept: the latest run of each target in fdbuild.lock (and, with "
        "--keep-runs N, its N-1 ancestors). Never deletes what it cannot prove unneeded: "
        "when a kept artifact is missing or damaged, every cache entry is kept (with a "
        "warning to run `fdbuild doctor --repair` and build first).",
    )
    p.add_argument(
        "--keep-runs",
        type=int,
        default=1,
        metavar="N",
        help="keep the latest N runs of each target's chain (default 1)",
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from fdbuild.gc import collect
    from fdbuild.project import find_project

    project = find_project(root=Path(args.root) if args.root else None)
    report = collect(project, keep_runs=max(1, args.keep_runs), dry_run=args.dry_run)
    for warning in report["warnings"]:
        print(f"fdbuild: warning: {warning}", file=sys.stderr)
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {report['artifacts']} artifact(s), {report['cache_entries']} cache entr(ies), "
        f"{report['temp_files']} temp file(s); kept {report['kept_runs']} run(s)"
    )
    return 0
