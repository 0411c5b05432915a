"""``fdbuild diff RUN_A RUN_B [--json] [--md] [--rows N] [--node NODE]... [--field COL]...``"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_RUN_HELP = (
    "run id, unique prefix of one, @ (latest run), @~N (its N-th ancestor), TARGET@ or TARGET@~N"
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="what changed between two runs, down to the rows",
        description="Compare two runs in four sections, each skipped when empty: Parameters "
        "(template and system text as a unified diff, teacher model, digest and "
        "server version, decode, n, gate params and keep rules, input file "
        "digests, --set overrides); Nodes (what B recomputed and why, rows cached "
        "vs computed); Metrics (A, B and the change); Rows (added, removed, "
        "changed and kept/dropped flips, with examples side by side). Nodes are "
        "matched by name, so runs of different targets can be compared.",
        epilog="Examples: `fdbuild diff @~1 @` (the latest run against its parent); "
        "`fdbuild diff 20261125T2115 @ --rows 10 --md`. With one RUN, B is the latest "
        "run of RUN's target; with none, the latest run is compared with its parent.",
    )
    p.add_argument("run_a", nargs="?", metavar="RUN_A", help=f"the earlier run: {_RUN_HELP}")
    p.add_argument("run_b", nargs="?", metavar="RUN_B", help="the later run (same forms)")
    p.add_argument(
        "--rows",
        type=int,
        default=5,
        metavar="N",
        help="example rows shown per node (default 5; 0 shows counts only)",
    )
    p.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NODE",
        help="diff the rows of NODE (repeatable; default: the nodes the exports read)",
    )
    p.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="COLUMN",
        help="column(s) compared for 'changed' rows (repeatable; default: completion, "
        "else every user column)",
    )
    p.add_argument("--no-rows", action="store_true", help="skip the row-level diff (records only)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the same content as one JSON object")
    fmt.add_argument("--md", action="store_true", help="Markdown tables, for a PR or notes")
    p.set_defaults(func=run)


def _names(project: Any, reader: Any, run_a: str | None, run_b: str | None) -> tuple[str, str]:
    """Fill in omitted run names: B defaults to the latest run of A's target, and with
    no names at all the comparison is the latest run against its parent."""
    from fdbuild.errors import PlanError
    from fdbuild.runs import read_run, resolve_run

    if run_a and run_b:
        return run_a, run_b
    latest = reader.latest()

    def record(name: str) -> Any:
        run_id = resolve_run(project, name, latest, reader)
        return reader.read(run_id) or read_run(project, run_id)

    if run_a:
        target = record(run_a).get("target")
        if target not in latest:
            raise PlanError(f"no latest run of target '{target}' in fdbuild.lock; name RUN_B")
        return run_a, latest[target]
    b = record("@")
    if not b.get("parent"):
        raise PlanError(
            f"run {b['run_id']} has no parent to compare with; name two runs "
            "(`fdbuild log` lists them)"
        )
    if reader.read(b["parent"]) is None:
        known = (
            " (fdbuild.lock records only the latest run of each target); after the next "
            f"build, `fdbuild diff` compares the new run with {b['run_id']}"
            if b.get("from_lock")
            else "; name two runs (`fdbuild log` lists them)"
        )
        raise PlanError(
            f"run {b['run_id']}'s parent {b['parent']} has no run record in this checkout{known}"
        )
    return b["parent"], b["run_id"]


def run(args: argparse.Namespace) -> int:
    from fdbuild.cli.runs_cmd import warn
    from fdbuild.diff.runs import DiffOptions, diff_runs
    from fdbuild.errors import SpecError
    from fdbuild.project import find_project
    from fdbuild.render.diff import diff_to_dict, render_markdown, render_text
    from fdbuild.runs import RunReader

    if args.rows < 0:
        raise SpecError(f"--rows {args.rows}: give 0 or more example rows")
    project = find_project(root=Path(args.root) if args.root else None)
    reader = RunReader(project, warn=warn)
    run_a, run_b = _names(project, reader, args.run_a, args.run_b)
    options = DiffOptions(
        nodes=tuple(args.node), fields=tuple(args.field), examples=args.rows, rows=not args.no_rows
    )
    diff = diff_runs(project, run_a, run_b, options, reader)
    if args.json:
        print(json.dumps(diff_to_dict(diff), indent=2, ensure_ascii=False))
    elif args.md:
        print(render_markdown(diff), end="")
    else:
        print(render_text(diff))
    return 0
