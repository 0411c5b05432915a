"""What changed between two runs: parameters, nodes, metrics and rows (``fdbuild diff``).

``compare_records`` is pure: two run records (and row diffs computed elsewhere) in, one
frozen ``Diff`` out, so tests and renderers need no project. ``diff_runs`` is the library
entry point of the CLI: it names the runs, reads their records and asks ``diffrows`` for
the row-level part, which reads Parquet artifacts.

Nodes are matched by *name*, never by key or target, so a born-again iteration can be
diffed against its parent even when the two runs belong to different target files.

Node order, producers and per-run metrics come from ``fdbuild.records``.

Either run may be known only from ``fdbuild.lock`` (its record is not in this checkout:
a fresh clone of a project with a committed lock). Its recipes then carry long texts as
digests, so both sides are compared as the lock shows them, and its counts and timing are
unknown; the diff says so in ``notes``.

Percent changes of times are left out where they mislead: where either run is a no-op
or offline (its wall time measures cache reads, not work), and where A's time is under
a second. ``Metric.percent_omitted`` says why; the renderers print it once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fdbuild.diff.rows import NodeRows, diff_node_rows
from fdbuild.errors import PlanError
from fdbuild.execute.explain import explain
from fdbuild.lockfile import lock_view
from fdbuild.project import Project
from fdbuild.records import (
    FROM_LOCK_NOTE,
    export_inputs,
    is_from_lock,
    node_order,
    producer,
    run_kind,
    run_metrics,
    short_digest,
    teacher_summary,
)
from fdbuild.runs import RunReader, read_run, resolve_run
from fdbuild.store.objects import ArtifactStore

Record = Mapping[str, Any]

_UNSET = "(unset)"
_RUN_FIELDS = ("target", "file", "fdbuild_version", "offline")
_LOCK_RUN_FIELDS = ("target", "file")  # the run-level fields a lock entry has
TINY_SECONDS = 1.0  # a time under this is too short to compare as a ratio


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RunInfo:
    """The header of one side of a diff."""

    run_id: str
    target: str
    file: str
    parent: str | None
    started_at: str | None
    teachers: str
    from_lock: bool = False


@dataclass(frozen=True)
class ParamChange:
    """One resolved input that differs. ``scope`` is ``run`` or a node name; long or
    multi-line texts (templates, system prompts) also carry a unified diff."""

    scope: str
    name: str
    before: Any
    after: Any
    text_diff: str | None = None


@dataclass(frozen=True)
class NodeChange:
    """A node B rebuilt, or whose inputs differ from A's, with why and at what cost."""

    node: str
    kind: str
    status: str  # added | removed | rebuilt | reused
    reasons: tuple[str, ...]
    recorded_reasons: tuple[str, ...]
    rows_a: int | None
    rows_b: int | None
    cached: int = 0
    computed: int = 0
    failed: int = 0
    teacher_calls: int = 0


@dataclass(frozen=True)
class Metric:
    """One line of the metrics table. ``unit``: count, rate, seconds, per_s or score."""

    name: str
    a: float | None
    b: float | None
    unit: str = "count"
    percent_omitted: str | None = None  # why no percent change is shown

    @property
    def change(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return round(self.b - self.a, 6)

    @property
    def percent(self) -> float | None:
        """The change relative to A, or None (no base, or ``percent_omitted``)."""
        change = self.change
        if change is None or not self.a or self.percent_omitted or self.unit == "rate":
            return None
        return change / self.a


@dataclass(frozen=True)
class Diff:
    a: RunInfo
    b: RunInfo
    parameters: tuple[ParamChange, ...] = ()
    nodes: tuple[NodeChange, ...] = ()
    unchanged: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ()
    rows: tuple[NodeRows, ...] = ()
    summary: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiffOptions:
    """``nodes``: nodes whose rows to diff (default: the exports' input nodes);
    ``fields``: columns compared for "changed" (default: ``completion``)."""

    nodes: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    examples: int = 5
    rows: bool = True


# --------------------------------------------------------------------------- run headers


def run_info(record: Record) -> RunInfo:
    return RunInfo(
        run_id=record["run_id"],
        target=record.get("target", "?"),
        file=record.get("file", "?"),
        parent=record.get("parent"),
        started_at=record.get("started_at"),
        teachers=teacher_summary(record),
        from_lock=is_from_lock(record),
    )


# --------------------------------------------------------------------------- parameters


def _teacher_text(identity: Any) -> Any:
    if not isinstance(identity, Mapping):
        return identity
    text = f"{identity.get('model')}@{short_digest(identity.get('digest'))}"
    return (
        text if identity.get("provider") in (None, "ollama") else f"{identity['provider']}:{text}"
    )


def _node_view(recipe: Mapping[str, Any], as_locked: bool = False) -> dict[str, Any]:
    """A recipe as compared: without its kind, a teacher as ``model@digest12`` (the
    run-level ``teachers.*`` lines carry the full identity); ``as_locked``: long texts
    as digests, as fdbuild.lock keeps them (when one side is known only from the lock)."""
    view = {k: v for k, v in (lock_view(recipe) if as_locked else recipe).items() if k != "kind"}
    for key in ("teacher", "judge_teacher"):
        if key in view:
            view[key] = _teacher_text(view[key])
    return view


def _run_view(record: Record, as_locked: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        k: record.get(k) for k in (_LOCK_RUN_FIELDS if as_locked else _RUN_FIELDS)
    }
    view["teachers"] = {
        n: {k: v for k, v in t.items() if k != "key"}
        for n, t in (record.get("teachers") or {}).items()
    }
    view["--set"] = list(record.get("overrides") or [])
    return view


def _is_text(name: str, before: Any, after: Any) -> bool:
    texts = [v for v in (before, after) if isinstance(v, str) and v != _UNSET]
    return bool(texts) and (
        name.split(".")[-1] in ("template", "system")
        or any("\n" in t or len(t) > 80 for t in texts)
    )


def text_diff(before: Any, after: Any, label: str) -> str:
    """A unified diff of two texts (either may be missing)."""
    old = before.splitlines() if isinstance(before, str) and before != _UNSET else []
    new = after.splitlines() if isinstance(after, str) and after != _UNSET else []
    lines = difflib.unified_diff(old, new, fromfile=f"A/{label}", tofile=f"B/{label}", lineterm="")
    return "\n".join(lines)


def _diff_tree(scope: str, path: str, before: Any, after: Any, out: list[ParamChange]) -> None:
    """Walk two values together; a leaf is where they stop both being mappings, so a
    keep rule ``ok -> {in: [ok, too_short]}`` is one change, not two."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            _diff_tree(
                scope,
                f"{path}.{key}" if path else str(key),
                before.get(key, _UNSET),
                after.get(key, _UNSET),
                out,
            )
        return
    if before == after and type(before) is type(after):
        return
    label = path if scope == "run" else f"{scope}.{path}"
    diff = text_diff(before, after, label) if _is_text(path, before, after) else None
    out.append(ParamChange(scope, path, before, after, diff))


def compare_parameters(a: Record, b: Record) -> list[ParamChange]:
    """Run-level inputs (teachers with digest and server version, ``--set``), then per
    node every resolved input that differs, nodes in B's order."""
    out: list[ParamChange] = []
    locked = is_from_lock(a) or is_from_lock(b)
    _diff_tree("run", "", _run_view(a, locked), _run_view(b, locked), out)
    nodes_a, nodes_b = a.get("nodes", {}), b.get("nodes", {})
    for name in _union_order(a, b):
        if name in nodes_a and name in nodes_b:
            _diff_tree(
                name,
                "",
                _node_view(nodes_a[name].get("recipe") or {}, locked),
                _node_view(nodes_b[name].get("recipe") or {}, locked),
                out,
            )
    return out


def _union_order(a: Record, b: Record) -> list[str]:
    order = node_order(b)
    return order + [n for n in node_order(a) if n not in order]


# --------------------------------------------------------------------------- nodes


def _input_reason(a: Record, b: Record, name: str) -> str | None:
    old = set(a["nodes"][name].get("input_digests") or [])
    changed = [
        producer(b, d, before=name) or "?"
        for d in b["nodes"][name].get("input_digests") or []
        if d not in old
    ]
    return f"input rows changed (from {', '.join(changed)})" if changed else None


def node_reasons(a: Record, b: Record, name: str) -> list[str]:
    """Why node ``name`` differs between A and B, in the build's own words."""
    node_a, node_b = a["nodes"][name], b["nodes"][name]
    previous = {
        "recipe": lock_view(node_a.get("recipe") or {}),
        "input_digests": node_a.get("input_digests"),
    }
    reasons = [
        r
        for r in explain(previous, node_b.get("recipe") or {}, node_b.get("input_digests") or [])
        if r != "input rows changed"
    ]
    if previous["input_digests"] != node_b.get("input_digests"):
        reasons.append(_input_reason(a, b, name) or "input rows changed")
    return reasons


def compare_nodes(a: Record, b: Record) -> tuple[list[NodeChange], list[str]]:
    """Nodes B added, removed, rebuilt or got from cache despite differing from A; and
    the names of the nodes whose recipe, inputs and output are the same as in A."""
    nodes_a, nodes_b = a.get("nodes", {}), b.get("nodes", {})
    changes: list[NodeChange] = []
    unchanged: list[str] = []
    for name in _union_order(a, b):
        na, nb = nodes_a.get(name), nodes_b.get(name)
        if nb is None:
            changes.append(NodeChange(name, na["kind"], "removed", (), (), _rows(na), None))
            continue
        stats = nb.get("stats") or {}
        reasons = node_reasons(a, b, name) if na is not None else []
        status = "added" if na is None else "reused" if stats.get("memo_hit") else "rebuilt"
        if na is not None and not reasons and _rows_same(na, nb):
            unchanged.append(name)  # B may have rebuilt it (vs its own parent); A has the same
            continue
        recorded = tuple(
            r for r in nb.get("reasons") or [] if not any(mine.startswith(r) for mine in reasons)
        )
        changes.append(
            NodeChange(
                name,
                nb["kind"],
                status,
                tuple(reasons),
                recorded,
                _rows(na),
                _rows(nb),
                cached=stats.get("cached", 0),
                computed=stats.get("computed", 0),
                failed=stats.get("failed", 0),
                teacher_calls=stats.get("teacher_calls", 0),
            )
        )
    return changes, unchanged


def _rows_same(na: Mapping[str, Any], nb: Mapping[str, Any]) -> bool:
    return na.get("output") == nb.get("output")


def _rows(node: Mapping[str, Any] | None) -> int | None:
    return None if node is None else node.get("output", {}).get("rows")


def recompute_summary(b: Record) -> dict[str, int]:
    """How much work B did: generations and evaluations computed, teacher calls."""
    nodes = b.get("nodes", {}).values()
    return {
        "generations": sum(
            (n.get("stats") or {}).get("computed", 0) for n in nodes if n["kind"] == "generate"
        ),
        "evaluations": sum(
            (n.get("stats") or {}).get("computed", 0) for n in nodes if n["kind"] == "gate"
        ),
        "teacher_calls": (b.get("totals") or {}).get("teacher_calls", 0),
        "failed": (b.get("totals") or {}).get("failed", 0),
    }


# --------------------------------------------------------------------------- metrics


def percent_omitted(unit: str, a_value: float | None, a: Record, b: Record) -> str | None:
    """Why a metric's percent change would mislead, or None. Times (and rates per
    second) of a no-op or offline run measure cache reads, not work; a time under
    ``TINY_SECONDS`` makes any ratio huge."""
    if unit not in ("seconds", "per_s"):
        return None
    for side, record in (("A", a), ("B", b)):
        kind = run_kind(record)
        if kind:
            article = "an" if kind == "offline" else "a"
            return f"{side} is {article} {kind} run: its time measures cache reads, not work"
    if unit == "seconds" and a_value is not None and abs(a_value) < TINY_SECONDS:
        return f"A's time is under {TINY_SECONDS:g} s: a ratio to it says little"
    return None


def compare_metrics(a: Record, b: Record) -> list[Metric]:
    """A's and B's metrics side by side, in B's order then A-only ones."""
    ma, mb = run_metrics(a), run_metrics(b)
    names = list(mb) + [n for n in ma if n not in mb]
    out = []
    for n in names:
        value_a = (ma.get(n) or (None, ""))[0]
        unit = (mb.get(n) or ma.get(n) or (None, "count"))[1]
        out.append(
            Metric(
                n,
                value_a,
                (mb.get(n) or (None, ""))[0],
                unit,
                percent_omitted(unit, value_a, a, b),
            )
        )
    return out


def diff_notes(a: Record, b: Record) -> list[str]:
    """What the reader must know to read the diff right (a side known from the lock)."""
    out = []
    for side, record in (("A", a), ("B", b)):
        if is_from_lock(record):
            out.append(
                f"run {side} ({record['run_id']}) is {FROM_LOCK_NOTE}: its long texts "
                "(templates, system prompts) are known by digest only, so both runs' are "
                f"compared by digest; {side}'s teacher calls, timing and reports are unknown"
            )
    return out


# --------------------------------------------------------------------------- entry points


def compare_records(a: Record, b: Record, rows: Sequence[NodeRows] = ()) -> Diff:
    """The whole diff of two run records; ``rows`` come from ``diffrows``."""
    nodes, unchanged = compare_nodes(a, b)
    return Diff(
        a=run_info(a),
        b=run_info(b),
        parameters=tuple(compare_parameters(a, b)),
        nodes=tuple(nodes),
        unchanged=tuple(unchanged),
        metrics=tuple(compare_metrics(a, b)),
        rows=tuple(rows),
        summary=recompute_summary(b),
        notes=tuple(diff_notes(a, b)),
    )


def rows_nodes(a: Record, b: Record, wanted: Sequence[str]) -> list[str]:
    """The nodes whose rows to diff: those asked for, else the exports' inputs of B
    (then A), else B's last node."""
    names = set(a.get("nodes", {})) | set(b.get("nodes", {}))
    for name in wanted:
        if name not in names:
            raise PlanError(
                f"--node '{name}': no such node in either run "
                f"(nodes: {', '.join(_union_order(a, b))})"
            )
    if wanted:
        return list(dict.fromkeys(wanted))
    found = export_inputs(b) or export_inputs(a)
    if found:
        return found
    order = [n for n in node_order(b) if b["nodes"][n]["kind"] != "export"]
    return order[-1:]


def diff_runs(
    project: Project,
    run_a: str,
    run_b: str,
    options: DiffOptions | None = None,
    reader: RunReader | None = None,
) -> Diff:
    """Resolve two run names, read their records and artifacts, and diff them.

    ``reader`` (the CLI's warns): an unreadable record of a run the lock records is
    replaced by what the lock says of it, with a warning; any other unreadable or missing
    record named is an error naming the file."""
    options = options or DiffOptions()
    reader = reader or RunReader(project, warn=None)
    latest = reader.latest()
    a = _read(project, reader, resolve_run(project, run_a, latest, reader))
    b = _read(project, reader, resolve_run(project, run_b, latest, reader))
    rows: list[NodeRows] = []
    if options.rows:
        store = ArtifactStore(project.objects_dir)
        for name in rows_nodes(a, b, options.nodes):
            rows.append(
                diff_node_rows(store, a, b, name, fields=options.fields, examples=options.examples)
            )
    return compare_records(a, b, rows)


def _read(project: Project, reader: RunReader, run_id: str) -> Record:
    return reader.read(run_id) or read_run(project, run_id)  # the latter raises why
