"""``fdbuild doctor [--repair] [--json]``: check the project's state; repair what is bad."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="verify artifacts, the row cache, the lock and run records; --repair fixes",
        description="Verify every artifact (bytes digest, readable Parquet, rows digest), "
        "every row-cache record (checksum, unpickles), fdbuild.lock and every run record. "
        "With --repair, move what is bad to .fdbuild/quarantine/ (damaged cache records "
        "are deleted) so the next build rebuilds it.",
        epilog="Exit codes: 0 nothing bad (with --repair: everything bad was repaired); "
        "1 something is bad (or, with --repair, could not be repaired: a bad fdbuild.lock "
        "is never touched).",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="quarantine damaged artifacts, run records and an unreadable cache; delete "
        "damaged cache records; write digests for legacy artifacts and records",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fdbuild.doctor import examine
    from fdbuild.project import find_project

    project = find_project(root=Path(args.root) if args.root else None)
    report = examine(project, repair=args.repair)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    return 0 if report.clean else 1


def render(report: Any) -> str:
    c = report.checked
    lines = [
        f"checked {c.get('artifacts', 0)} artifact(s), {c.get('cache_records', 0)} cache "
        f"record(s), {'fdbuild.lock' if c.get('lock') else 'no lock'}, "
        f"{c.get('runs', 0)} run record(s)"
    ]
    legacy = [
        f"{c[k]} {label}"
        for k, label in (
            ("legacy_artifacts", "artifact(s) without a recorded bytes digest"),
            ("legacy_records", "cache record(s) without a checksum"),
        )
        if c.get(k)
    ]
    if legacy:
        verb = "digests written for" if report.repair else "legacy, verified by content:"
        lines.append(f"  {verb} {', '.join(legacy)}")
    for f in report.findings:
        where = f"{f.path} [{f.key}]" if f.key else f.path
        mark = "repaired" if f.repaired else "bad"
        lines.append(f"  {mark}: {f.kind} {where}: {f.problem}")
        lines.append(f"        {'-> ' if f.repaired else 'repair: '}{f.repair}")
    if c.get("quarantined"):
        lines.append(f"  {c['quarantined']} item(s) in .fdbuild/quarantine/ (delete when done)")
    if not report.findings:
        lines.append("everything verifies")
    elif report.clean:
        lines.append(
            f"repaired {len(report.findings)} problem(s); run the build again: it rebuilds "
            "what was moved aside"
        )
    else:
        todo = sum(1 for f in report.findings if not f.repaired)
        hint = (
            "run `fdbuild doctor --repair` to move it aside so the next build heals"
            if not report.repair
            else "see the repair lines above"
        )
        lines.append(f"{todo} problem(s); {hint}")
    return "\n".join(lines)
