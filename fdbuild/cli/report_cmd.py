"""``fdbuild report [RUN ...] [--out FILE] [--open]``"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fdbuild.cli.diff_cmd import _RUN_HELP


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of a run chain: charts, changes, flipped rows",
        description="Write one HTML file (inline SVG charts, no script, nothing loaded from "
        "the network when viewed) with: the run chain as a timeline (teachers, digests, what "
        "changed between consecutive runs), pass rates per gate along the chain, judge score "
        "histograms, per-call latency and tokens/s per generate node (from the cached "
        "generations; the run record's p50/p95 when they are gone), the teacher-vs-student "
        "table of a compare node, and the rows whose verdict flipped between the last two "
        "runs, with their text.",
        epilog="Examples: `fdbuild report` (the latest run's whole chain); `fdbuild report "
        "@~2 @~1 @` (exactly those runs); `fdbuild report quickstart@ --open`.",
    )
    p.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help=f"{_RUN_HELP}. None: the latest run and all its ancestors; one: that run and "
        "its ancestors; several: exactly those, in the order given (oldest first)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the page (default .fdbuild/reports/<latest run id>.html)",
    )
    p.add_argument(
        "--open", action="store_true", help="open the page in the web browser, where there is one"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fdbuild.cli.runs_cmd import warn
    from fdbuild.errors import PlanError
    from fdbuild.project import find_project
    from fdbuild.report.data import gather
    from fdbuild.report.html import render
    from fdbuild.runs import RunReader, read_run, resolve_run
    from fdbuild.store.atomic import atomic_write_text

    project = find_project(root=Path(args.root) if args.root else None)
    reader = RunReader(project, warn=warn)
    latest = reader.latest()
    names = list(args.runs) or ["@"]
    ids = [resolve_run(project, name, latest, reader) for name in names]
    if len(ids) == 1:
        chain = list(reversed(reader.chain(ids[0])))
        if not chain:
            read_run(project, ids[0])  # raises why
            raise PlanError(f"run {ids[0]} has no readable record")
    else:
        chain = [reader.read(i) or read_run(project, i) for i in ids]
    data = gather(project, chain, reader)
    newest = chain[-1]
    title = (
        f"fdbuild report: {newest.get('target') or '?'}, {len(chain)} run(s) to {newest['run_id']}"
    )
    out = Path(args.out) if args.out else project.state_dir / "reports" / f"{newest['run_id']}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render(data, title))
    print(out)
    if args.open:
        import webbrowser

        if not webbrowser.open(out.resolve().as_uri()):
            warn(f"no web browser found to open {out}; open it yourself")
    return 0
