"""The library entry point of ``fdbuild build``: load, lock the project, execute, record.

Writes, in order and only after the graph ran: one immutable run record per target
named on the command line, then ``fdbuild.lock`` (if it changed). A dry run writes
nothing at all; an interrupted build writes no record (every finished generation is
already in the row cache).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fdbuild import __version__
from fdbuild.errors import FdbuildError
from fdbuild.events import NullReporter, Reporter
from fdbuild.execute.context import BuildContext, BuildOptions, NodeResult
from fdbuild.execute.engine import GraphRun, execute_graph
from fdbuild.execute.teachers import TeacherPool
from fdbuild.execute.write_errors import writing
from fdbuild.lockfile import dump_lock, load_lock, lock_view
from fdbuild.project import Project, StoreMutex, find_project
from fdbuild.runs import list_runs, new_run_id, read_run, resolve_run, write_run
from fdbuild.spec.graph import Graph, NodeRef, load_graph
from fdbuild.spec.load import Override
from fdbuild.spec.model import ExportNode


@dataclass
class TargetRun:
    """One target's outcome: its run record (also written to disk unless dry run)."""

    record: dict[str, Any]
    results: dict[str, NodeResult] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.record["totals"]["failed"]

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object of SPEC 4 (plus ``require`` for a target with bars)."""
        bars = {"require": self.record["require"]} if "require" in self.record else {}
        return {
            "run_id": self.record["run_id"],
            "target": self.record["target"],
            "nodes": {
                name: {
                    k: n["stats"][k]
                    for k in (
                        "rows_in",
                        "rows_out",
                        "cached",
                        "computed",
                        "failed",
                        "teacher_calls",
                        "wall_s",
                    )
                }
                for name, n in self.record["nodes"].items()
            },
            "teacher_calls": self.record["totals"]["teacher_calls"],
            "failed": self.record["totals"]["failed"],
            **bars,
        }


@dataclass
class BuildOutcome:
    runs: list[TargetRun]
    graph: Graph
    dry_run: bool

    @property
    def exit_code(self) -> int:
        """3 failed rows (wins: the figures rest on an incomplete build); 6 a ``require:``
        bar missed; else 0."""
        from fdbuild.require import EXIT_MISSED, missed

        if any(r.failed for r in self.runs):
            return 3
        return EXIT_MISSED if any(missed(r.record) for r in self.runs) else 0


def build(
    targets: Sequence[Path],
    *,
    options: BuildOptions | None = None,
    overrides: Sequence[Override] = (),
    root: Path | None = None,
    reporter: Reporter | None = None,
) -> BuildOutcome:
    options = options or BuildOptions()
    project = find_project(root=root)
    graph = load_graph(targets, overrides, root=project.root)
    reporter = reporter or NullReporter()
    if options.dry_run:
        return _build_locked(graph, project, options, overrides, reporter)
    # A write error the steps below do not name more precisely (the mutex file, say)
    # still ends the build with one message naming the folder, not a traceback.
    with (
        writing(project.state_dir),
        StoreMutex(
            project,
            on_wait=lambda who: reporter.message(
                f"another fdbuild build is running ({who}); waiting for it to finish..."
            ),
        ),
    ):
        return _build_locked(graph, project, options, overrides, reporter)


def _build_locked(
    graph: Graph,
    project: Project,
    options: BuildOptions,
    overrides: Sequence[Override],
    reporter: Reporter,
) -> BuildOutcome:
    lock = load_lock(project.lock_path)
    if options.parent is not None:  # a bad name must fail before any work, not after
        parent = resolve_run(
            project, options.parent, {t: e["run"] for t, e in lock["targets"].items()}
        )
        options = replace(options, parent=parent)
    with writing(project.cache_dir):
        ctx = BuildContext(project=project, options=options, reporter=reporter)
    started = time.time()
    try:
        recorded = _recorded_teachers(lock, project, from_runs=options.offline or options.dry_run)
        run = execute_graph(graph, ctx, _previous_nodes(lock), recorded)
    finally:
        ctx.close()
    finished = time.time()
    runs = [
        _target_run(graph, ctx, lock, name, run, overrides, started, finished)
        for name in graph.roots
    ]
    if not options.dry_run:
        for target_run in runs:
            with writing(project.runs_dir):
                write_run(project, target_run.record)
            with writing(project.root):
                _write_export_reports(graph, target_run.record)
            _update_lock(lock, graph, target_run)
        with writing(project.root):
            dump_lock(project.lock_path, lock)
    return BuildOutcome(runs=runs, graph=graph, dry_run=options.dry_run)


def _previous_nodes(lock: dict[str, Any]) -> dict[NodeRef, dict[str, Any]]:
    """Recorded node entries by node, the node's own target's entry winning."""
    out: dict[NodeRef, dict[str, Any]] = {}
    own: set[NodeRef] = set()
    for target, entry in lock.get("targets", {}).items():
        for name, node in (entry.get("nodes") or {}).items():
            other, sep, node_name = name.partition("#")
            ref = NodeRef(other, node_name) if sep else NodeRef(target, name)
            if ref in own:
                continue
            out[ref] = node
            if not sep:
                own.add(ref)
    return out


def _recorded_teachers(
    lock: dict[str, Any], project: Project, *, from_runs: bool
) -> dict[str, dict[str, Any]]:
    """Teacher identities known without asking a server: what the lock records (each
    target's latest run) and, for ``--offline`` and ``--dry-run`` only, what every run
    record holds, so an older born-again iteration whose teacher is no longer the
    latest one still rebuilds offline. The lock wins over older records."""
    out: dict[str, dict[str, Any]] = {}
    if from_runs:
        for record in _readable_runs(project):
            for teacher in (record.get("teachers") or {}).values():
                if isinstance(teacher, dict) and teacher.get("key") and teacher.get("digest"):
                    out[teacher["key"]] = teacher
    for entry in lock.get("targets", {}).values():
        for teacher in (entry.get("teachers") or {}).values():
            if teacher.get("key"):
                out[teacher["key"]] = teacher
    return out


def _readable_runs(project: Project) -> list[dict[str, Any]]:
    """Every run record that reads, oldest first (an unreadable one is skipped: the
    lock, ``log`` and ``doctor`` report those)."""
    out = []
    for run_id in list_runs(project):
        try:
            out.append(read_run(project, run_id))
        except FdbuildError:
            continue
    return out


def _node_name(root: str, ref: NodeRef) -> str:
    return ref.node if ref.target == root else str(ref)


def _target_run(
    graph: Graph,
    ctx: BuildContext,
    lock: dict[str, Any],
    name: str,
    run: GraphRun,
    overrides: Sequence[Override],
    started: float,
    finished: float,
) -> TargetRun:
    target = graph.targets[name]
    refs = [
        r
        for r in graph.order
        if r in run.results and (r.target == name or _upstream_of(graph, name, r))
    ]
    results = {_node_name(name, r): run.results[r] for r in refs}
    failures = [f.to_dict() for r in refs for f in run.results[r].failures]
    nodes = {
        n: _node_record(graph.nodes[r], run.results[r]) for n, r in zip(results, refs, strict=True)
    }
    teachers = {}
    hosts: dict[str, Any] = {}  # per teacher, per host: requests, failures, latency
    host_report = getattr(run, "hosts", None) or {}
    used = {r.target for r in refs}
    for (tname, teacher), identity in run.identities.items():
        if tname in used:  # upstream targets' teachers too: --offline needs their digests
            spec = graph.targets[tname].spec.teachers[teacher]
            label = teacher if tname == name else f"{tname}#{teacher}"
            teachers[label] = {**identity, "key": TeacherPool.offline_key(spec)}
            report = host_report.get(f"{tname}#{teacher}") or host_report.get(teacher)
            if report:
                hosts[label] = report
    previous = lock.get("targets", {}).get(name, {}).get("run")
    parent = ctx.options.parent
    record = {
        "schema": 1,
        "run_id": new_run_id(started),
        "parent": parent if parent is not None else previous,
        "target": name,
        "file": ctx.project.relative(target.path),
        "status": "failed_rows" if failures else "ok",
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "wall_s": round(finished - started, 3),
        "fdbuild_version": __version__,
        "python": sys.version.split()[0],
        "argv": list(ctx.options.argv),
        "overrides": [o.text for o in overrides],
        "offline": ctx.options.offline,
        "teachers": teachers,
        **({"hosts": hosts} if hosts else {}),
        "nodes": nodes,
        "node_order": list(nodes),  # build order; the JSON file sorts "nodes" by name
        "failures": failures,
        "totals": {
            "teacher_calls": sum(n["stats"]["teacher_calls"] for n in nodes.values()),
            "failed": len(failures),
        },
    }
    from fdbuild.funnel import artifact_reader
    from fdbuild.funnel_reuse import reusable_funnel
    from fdbuild.reports import build_reports

    # a dry run has no rows to count: no funnel
    read = None if ctx.options.dry_run else artifact_reader(ctx.artifacts)
    # a no-op's funnel is the previous run's (recounting it reads every chain artifact)
    reused = None if read is None else reusable_funnel(ctx.project, previous, nodes)
    reports = build_reports(record, None if reused is not None else read)
    if reused is not None:
        reports["funnel"] = reused
    compare = {
        n: rec["stats"]["compare"] for n, rec in nodes.items() if rec["stats"].get("compare")
    }
    if compare:
        reports["compare"] = compare
    record["reports"] = reports
    if target.spec.require and not ctx.options.dry_run:
        from fdbuild.require import evaluate

        bars = evaluate(record, list(target.spec.require))
        record["require"] = bars
        if record["status"] == "ok" and not all(r["ok"] for r in bars):
            record["status"] = "require_missed"
    return TargetRun(record=record, results=results)


def _upstream_of(graph: Graph, root: str, ref: NodeRef) -> bool:
    stack = [r for r in graph.order if r.target == root]
    seen: set[NodeRef] = set()
    while stack:
        cur = stack.pop()
        if cur == ref:
            return True
        if cur in seen:
            continue
        seen.add(cur)
        stack.extend(graph.nodes[cur].inputs)
    return False


def _node_record(node: Any, result: NodeResult) -> dict[str, Any]:
    stats = result.stats
    lat = sorted(stats.latencies_s)
    return {
        "kind": node.kind,
        "recipe": result.recipe,
        "key": result.key,
        "input_digests": result.inputs,
        "output": {"digest": result.digest, "rows": result.rows},
        "pending": result.pending,
        "reasons": result.reasons,
        "stats": {
            **stats.summary(),
            "memo_hit": stats.memo_hit,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "latency_p50_s": round(statistics.median(lat), 4) if lat else None,
            "latency_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 4)
            if lat
            else None,
            **{k: v for k, v in stats.extra.items()},
        },
    }


def _update_lock(lock: dict[str, Any], graph: Graph, target_run: TargetRun) -> None:
    record = target_run.record
    nodes = {}
    for name, node in record["nodes"].items():
        nodes[name] = {
            "kind": node["kind"],
            "recipe": lock_view(node["recipe"]),
            "input_digests": node["input_digests"],
            "output": node["output"],
        }
    lock["targets"][record["target"]] = {
        "file": record["file"],
        "run": record["run_id"],
        "parent": record["parent"],
        "overrides": record["overrides"],
        "teachers": record["teachers"],
        "nodes": nodes,
    }


def _write_export_reports(graph: Graph, record: dict[str, Any]) -> None:
    """The run's quality and timing reports as JSON beside each export, for other tools.

    Beside, not inside: the export itself stays byte-identical across no-op rebuilds."""
    import json

    from fdbuild.store.atomic import atomic_write_text

    target = graph.targets[record["target"]]
    for name, node in record["nodes"].items():
        if node["kind"] != "export" or "#" in name:
            continue
        spec = target.spec.nodes[name]
        assert isinstance(spec, ExportNode)  # the run recorded it as an export
        path = target.resolve_path(spec.path)
        report = {"run_id": record["run_id"], "target": record["target"], **record["reports"]}
        atomic_write_text(
            path.with_name(path.name + ".report.json"),
            json.dumps(report, indent=2, sort_keys=True) + "\n",
        )


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
