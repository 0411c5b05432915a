"""``fdbuild log [TARGET] [--json] [-n N]`` and ``fdbuild show RUN [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "log",
        help="the run chain, newest first",
        description="The run chain of each target (or of one), newest first: run_id, parent, "
        "when, teacher tag and short digest, rows kept (exported), teacher calls, "
        "failed rows and --set overrides.",
    )
    p.add_argument(
        "target", nargs="?", help="target name or file (default: every target in fdbuild.lock)"
    )
    p.add_argument("-n", "--limit", type=int, metavar="N", help="show at most N runs per target")
    p.add_argument("--json", action="store_true", help="JSON on stdout: {target: [run, ...]}")
    p.set_defaults(func=run_log)
    s = sub.add_parser(
        "show",
        help="one run's record in readable form",
        description="Show one run: teachers (model, digest, server version), the resolved "
        "parameters of every node, per-node counts, the quality and timing "
        "reports, and failures.",
    )
    s.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        default="@",
        help="run id, unique prefix, @ (default), @~N, TARGET@ or TARGET@~N",
    )
    s.add_argument("--json", action="store_true", help="the run record as JSON")
    s.set_defaults(func=run_show)


def _project(args: argparse.Namespace) -> Any:
    from fdbuild.project import find_project

    return find_project(root=Path(args.root) if args.root else None)


def warn(message: str) -> None:
    """One warning line on stderr (stdout stays clean for --json)."""
    print(f"fdbuild: warning: {message}", file=sys.stderr)


def run_log(args: argparse.Namespace) -> int:
    from fdbuild.errors import PlanError, SpecError
    from fdbuild.render.runs import log_rows, render_log
    from fdbuild.runs import RunReader

    if args.limit is not None and args.limit < 1:
        raise SpecError(f"--limit {args.limit}: give 1 or more")
    project = _project(args)
    reader = RunReader(project, warn=warn)
    latest = reader.latest()
    if args.target:
        name = Path(args.target).name.removesuffix(".yaml").removesuffix(".yml")
        name = args.target if args.target in latest else name
        if name not in latest:
            raise PlanError(
                f"no runs of target '{args.target}' "
                f"(targets: {', '.join(sorted(latest)) or 'none yet'})"
            )
        latest = {name: latest[name]}
    chains: dict[str, list[dict[str, Any]]] = {}
    stops: dict[str, str] = {}  # target -> where its chain stops and why (no record here)
    for target, run_id in sorted(latest.items()):
        full = reader.chain(run_id)
        chains[target] = full[: args.limit]
        behind = full[-1].get("parent") if full else run_id
        if behind and len(chains[target]) == len(full):
            stops[target] = f"{behind}, {reader.why_missing(behind)}"
    if args.json:
        print(json.dumps({t: log_rows(c) for t, c in chains.items()}, indent=2))
    else:
        print(render_log(chains, stops))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from fdbuild.render.runs import render_show
    from fdbuild.runs import RunReader, read_run, resolve_run

    project = _project(args)
    reader = RunReader(project, warn=warn)
    record = read_run(project, resolve_run(project, args.run, reader.latest(), reader))
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(render_show(record))
    return 0
