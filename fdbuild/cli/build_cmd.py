"""``fdbuild build TARGET... [--dry-run] [--offline] [--set K=V]... [--json] [--parent RUN]
[--jobs N] [--executor local|ray] [--ray-address ADDR]
[--teacher-workers N]``"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "build",
        help="build target files (and what they depend on)",
        description="Build datasets from YAML target files, recomputing only what changed.",
        epilog="Exit codes: 0 built; 2 bad target file or arguments; 3 built but some rows "
        "failed (recorded, retried next build); 4 a write failed (disk full, quota, I/O "
        "error): finished results are kept, free space and run again; 5 a teacher's digest "
        "changed during the build (what it answered since its last check is discarded); "
        "6 built, but a require: quality bar was missed (each miss is printed and recorded; "
        "3 wins when rows also failed); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), both keeping every finished "
        "result; 1 other errors.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="target YAML file(s)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (per node: rows cached / to compute, and why); call no teacher, write nothing",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never call a teacher: a cache miss fails the build, naming the rows",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override one value of the target(s) for this run, e.g. teachers.main.model=student-1",
    )
    p.add_argument(
        "--parent",
        metavar="RUN",
        help="record RUN as the new run's parent (born-again iterations); default: the target's previous run",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="worker processes for CPU-bound gate checks (sqlite_exec, python_tests, "
        "symbolic math_answer) with --executor local; default: the cores available; "
        "1: all in this process",
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where CPU-bound checks and reply parsing run: local (this machine, --jobs) "
        "or ray (Ray tasks over a cluster; pip install 'fdbuild[ray]'); teacher calls, "
        "the cache and every file stay with this process, the results are the same",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the cluster to use, as Ray's own address "
        "(host:6379, ray://host:10001, auto: the cluster `ray start` runs here); "
        "default: $RAY_ADDRESS, else a new local Ray, ended with the build",
    )
    p.add_argument(
        "--teacher-workers",
        type=_positive_int,
        metavar="N",
        help="make the HTTP teacher calls (ollama, openai) in N worker processes, each "
        "with its own client, for a fleet fast enough that this process's core is the "
        "limit; keys, retries, the cache and every file stay here; default: none",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON summary on stdout at the end"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from fdbuild.cli.console import ConsoleReporter
    from fdbuild.execute.build import build
    from fdbuild.execute.context import BuildOptions
    from fdbuild.spec.load import Override

    if args.ray_address and args.executor != "ray":
        from fdbuild.errors import SpecError

        raise SpecError("--ray-address needs --executor ray")
    overrides = [Override.parse(text) for text in args.overrides]
    options = BuildOptions(
        dry_run=args.dry_run,
        offline=args.offline,
        parent=args.parent,
        argv=tuple(["fdbuild", *args.argv]),
        jobs=args.jobs,
        executor=args.executor,
        ray_address=args.ray_address,
        teacher_workers=args.teacher_workers or 0,
    )
    reporter = ConsoleReporter(
        quiet=args.quiet or args.json and not sys.stderr.isatty(), dry_run=args.dry_run
    )
    try:
        outcome = build(
            [Path(t) for t in args.targets],
            options=options,
            overrides=overrides,
            root=Path(args.root) if args.root else None,
            reporter=reporter,
        )
    finally:
        reporter.close()
    if not outcome.dry_run:
        warn_empty_exports(outcome)
    if args.json:
        summaries = [r.summary() for r in outcome.runs]
        payload = summaries[0] if len(summaries) == 1 else {"runs": summaries}
        if outcome.dry_run:
            payload = {"dry_run": True, **payload}
        print(json.dumps(payload, indent=2, sort_keys=False))
    elif outcome.dry_run:
        print(render_plan(outcome))
    else:
        for target_run in outcome.runs:
            print(render_summary(target_run.record))
    return outcome.exit_code


def render_plan(outcome: Any) -> str:
    lines = ["Dry run: no teacher called, nothing written."]
    for target_run in outcome.runs:
        lines.append(f"\ntarget {target_run.record['target']}:")
        for name, node in target_run.record["nodes"].items():
            stats = node["stats"]
            if stats.get("memo_hit"):
                status = f"unchanged: {node['output']['rows']} rows reused"
            elif node["kind"] in ("generate", "gate") and "to_compute" in stats:
                status = f"{stats['cached']} cached, {stats['to_compute']} to compute"
            elif node["pending"]:
                status = "waits for upstream rows"
            elif node["kind"] == "export":
                status = "would write " + str(node["recipe"].get("path"))
            else:
                status = f"recompute ({node['output']['rows']} rows)"
            lines.append(f"  {name:<24} {node['kind']:<9} {status}")
            for reason in node["reasons"]:
                if not (node["pending"] and reason.startswith("waits for upstream")):
                    lines.append(f"  {'':<24} {'':<9} why: {reason}")
    return "\n".join(lines)


def render_funnel(funnel: dict[str, Any]) -> str:
    """``asked 320 -> parsed 320 -> valid SQL 301 -> executes 160 -> ... -> exported 21 (sft)``"""
    steps = [f"{s['stage']} {s['rows']}" for s in funnel["stages"][:-1]]
    exports = funnel["exports"]
    if len(set(exports.values())) == 1:
        steps.append(f"exported {next(iter(exports.values()))} ({', '.join(exports)})")
    else:
        steps.append("exported " + ", ".join(f"{n} {rows}" for n, rows in exports.items()))
    return " -> ".join(steps)


def warn_empty_exports(outcome: Any) -> None:
    """A 0-row export is a warning on stderr (also in the summary), naming the node that
    dropped everything: a build that exports nothing did not do what was asked."""
    from fdbuild.funnel import zero_row_warnings

    for target_run in outcome.runs:
        for warning in zero_row_warnings(target_run.record):
            print(f"fdbuild: warning: {warning}", file=sys.stderr)


def render_compare(record: dict[str, Any]) -> list[str]:
    """``compare cmp: 10 joined (only a 0, only b 0)`` and one line per gate and score."""
    lines = []
    for name, cmp in (record.get("reports", {}).get("compare") or {}).items():
        lines.append(
            f"  compare {name}: {cmp['joined']} joined "
            f"(only a {cmp['only_a']}, only b {cmp['only_b']})"
        )
        for gate, g in cmp.get("gates", {}).items():
            lines.append(
                f"    gate {gate}: pass a {_num(g['pass_rate_a'])} b {_num(g['pass_rate_b'])}, "
                f"agreement {_num(g['agreement'])}, kappa {_num(g['kappa'])} (n {g['n']})"
            )
        for col, sc in cmp.get("scores", {}).items():
            lines.append(
                f"    score {col}: MAE {_num(sc['mae'])}, RMSE {_num(sc['rmse'])}, "
                f"Pearson {_num(sc['pearson'])}, Spearman {_num(sc['spearman'])} (n {sc['n']})"
            )
    return lines


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render_require(record: dict[str, Any]) -> list[str]:
    """``require: executed gold_match_rate 0.21 < 0.30 (missed by 0.09)`` per miss, and
    a count of the bars passed."""
    from fdbuild.require import describe

    results = record.get("require") or []
    if not results:
        return []
    passed = [r for r in results if r["ok"]]
    lines = [f"  require: {len(passed)}/{len(results)} bars passed"]
    lines += ["  require: " + describe(r) for r in results if not r["ok"]]
    return lines


def render_summary(record: dict[str, Any]) -> str:
    from fdbuild.funnel import zero_row_warnings
    from fdbuild.render.hosts import host_summary_lines

    totals = record["totals"]
    nodes = record["nodes"]
    lines = [
        f"run {record['run_id']} of {record['target']}"
        f" (parent {record['parent'] or 'none'}): {totals['teacher_calls']} teacher calls, "
        f"{totals['failed']} failed rows, {record['wall_s']:.1f}s"
    ]
    for name, gate in record.get("reports", {}).get("quality", {}).items():
        rate = gate.get("pass_rate")
        lines.append(
            f"  gate {name}: {gate['kept']}/{gate['evaluated']} passed"
            + (f" ({rate:.0%})" if rate is not None else "")
        )
    for name, node in nodes.items():
        stats = node["stats"]
        if node["kind"] == "vote" and stats.get("vote"):
            v = stats["vote"]
            lines.append(
                f"  vote {name}: picked {v.get('picked')} of {v.get('inputs')} inputs "
                f"(ties {v.get('ties')}, no voters {v.get('no_voters')}, "
                f"mean share {v.get('mean_share')})"
            )
        if node["kind"] == "pairs" and stats.get("pairs"):
            pr = stats["pairs"]
            lines.append(
                f"  pairs {name}: {pr.get('pairs')} pairs from {pr.get('inputs')} inputs "
                f"(below margin {pr.get('below_margin')}, ties {pr.get('ties')}, "
                f"single candidate {pr.get('single')})"
            )
    for name, node in nodes.items():
        if node["kind"] == "export":
            lines.append(
                f"  export {name}: {node['output']['rows']} rows -> {node['recipe']['path']}"
            )
    for funnel in record.get("reports", {}).get("funnel") or []:
        lines.append("  funnel: " + render_funnel(funnel))
    for warning in zero_row_warnings(record):
        lines.append("  warning: " + warning)
    lines.extend(render_compare(record))
    lines.extend(render_require(record))
    lines.extend(host_summary_lines(record))
    own_generate = any(n["kind"] == "generate" and "#" not in name for name, n in nodes.items())
    if not record["parent"] and own_generate:
        target_file = record["file"]
        lines.append(
            "\nnext: edit the template in " + target_file + " and run the same command again "
            "(only changed prompts go to the teacher);\n      then `fdbuild diff @~1 @`, "
            "`fdbuild log`, `fdbuild show @`"
        )
    if totals["failed"]:
        lines.append(
            f"  {totals['failed']} row(s) failed (see `fdbuild show {record['run_id'][:22]}`); "
            "they are retried on the next build"
        )
    return "\n".join(lines)
