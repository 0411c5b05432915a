"""``fdbuild log [TARGET]`` and ``fdbuild show RUN``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="the run chain, newest first",
                       description="The run chain of each target (or one), newest first: run_id, "
                                   "parent, time, teacher and digest, rows kept, teacher calls.")
    p.add_argument("target", nargs="?", help="target name (default: every target in fdbuild.lock)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(func=run_log)
    s = sub.add_parser("show", help="one run's record in readable form",
                       description="Show one run: resolved parameters, per-node counts, reports, failures.")
    s.add_argument("run", metavar="RUN", help="run id, unique prefix, @, @~N or TARGET@")
    s.add_argument("--json", action="store_true", help="the raw run record as JSON")
    s.set_defaults(func=run_show)


def _project(args: argparse.Namespace) -> Any:
    from fdbuild.project import find_project

    return find_project(root=Path(args.root) if args.root else None)


def run_log(args: argparse.Namespace) -> int:
    from fdbuild.errors import PlanError
    from fdbuild.lockfile import latest_runs, load_lock
    from fdbuild.render.runs import log_rows, render_log
    from fdbuild.runs import chain

    project = _project(args)
    latest = latest_runs(load_lock(project.lock_path))
    if args.target:
        if args.target not in latest:
            raise PlanError(f"no runs of target '{args.target}' in fdbuild.lock "
                            f"(targets: {', '.join(sorted(latest)) or 'none'})")
        latest = {args.target: latest[args.target]}
    chains = {t: chain(project, run_id) for t, run_id in sorted(latest.items())}
    if args.json:
        print(json.dumps({t: log_rows(c) for t, c in chains.items()}, indent=2))
    else:
        print(render_log(chains))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from fdbuild.lockfile import latest_runs, load_lock
    from fdbuild.render.runs import render_show
    from fdbuild.runs import read_run, resolve_run

    project = _project(args)
    run_id = resolve_run(project, args.run, latest_runs(load_lock(project.lock_path)))
    record = read_run(project, run_id)
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(render_show(record))
    return 0
