"""What ``fdbuild report`` shows, gathered from run records, artifacts and the row cache.

Everything here is read-only: artifacts are read through ``ArtifactStore.require``
(the bytes are verified against their sidecar first), and row-cache records through
``get_raw`` and their checksum, so a damaged record is skipped, not dropped.

Per-call latencies are not in the run record (it keeps p50/p95 per node): the report
reads them from the generations themselves, the ``g:`` records named by a generate
node's ``_key_<node>`` column (``total_duration_ns``, ``eval_duration_ns``,
``completion_tokens``). Where those are gone (``gc``, a fresh clone), the run record's
p50/p95 are drawn instead and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fdbuild import columns as C
from fdbuild.diff.runs import DiffOptions, ParamChange, compare_parameters, diff_runs
from fdbuild.errors import ArtifactCorrupt, FdbuildError
from fdbuild.project import Project
from fdbuild.records import rows_kept
from fdbuild.runs import RunReader
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.records import RecordDamaged, decode
from fdbuild.store.rowcache import GEN, RowCache

Record = Mapping[str, Any]
MAX_SAMPLES = 20_000  # per-call figures read per generate node
FLIP_EXAMPLES = 20


@dataclass(frozen=True)
class RunPoint:
    """One run of the chain, with what changed since the run before it."""

    run_id: str
    target: str
    started_at: str | None
    status: str
    teachers: tuple[tuple[str, str, str], ...]  # (name, model, digest)
    rows_kept: int | None
    changes: tuple[ParamChange, ...] = ()


@dataclass(frozen=True)
class Timing:
    """Per-call figures of one generate node in the latest run."""

    node: str
    teacher: str
    latencies_s: tuple[float, ...]
    tokens_per_s: tuple[float, ...]
    p50_s: float | None
    p95_s: float | None
    mean_tokens_per_s: float | None
    from_cache: bool


@dataclass(frozen=True)
class Flip:
    node: str
    gate: str | None
    row_id: str
    change: str
    detail: str | None
    text: str | None


@dataclass
class ReportData:
    runs: list[RunPoint]
    pass_rates: dict[str, list[float | None]]  # gate -> per run, oldest first
    scores: dict[str, list[float]]  # "gate.column" -> values (latest run)
    timings: list[Timing]
    compare: dict[str, Any]
    flips: list[Flip]
    flip_runs: tuple[str, str] | None
    flip_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def chart_count(self) -> int:
        """The charts the page draws: the timeline, pass rates (when any gate), one
        histogram per scored gate column, latency and tokens/s per generate node."""
        return 1 + (1 if self.pass_rates else 0) + len(self.scores) + 2 * len(self.timings)


def read_columns(
    store: ArtifactStore, digest: str | None, columns: Sequence[str], notes: list[str] | None = None
) -> list[dict]:
    """Those columns (the ones present) of a verified artifact's rows; [] when missing or
    damaged (then ``notes`` says so: the page is drawn without it, never from bad bytes)."""
    if not digest or not store.exists(digest):
        return []
    import pyarrow.parquet as pq

    try:
        store.require(digest)
    except ArtifactCorrupt as exc:
        if notes is not None:
            notes.append(f"{exc.message}; left out of this page")
        return []
    present = set(store.schema(digest).names)
    wanted = [c for c in dict.fromkeys(columns) if c in present]
    if not wanted:
        return []
    return pq.read_table(store.path(digest), columns=wanted).to_pylist()


def _teachers(record: Record) -> tuple[tuple[str, str, str], ...]:
    out = []
    for name, t in sorted((record.get("teachers") or {}).items()):
        out.append((name, str(t.get("model") or "?"), str(t.get("digest") or "?")))
    return tuple(out)


def _gates(record: Record) -> list[str]:
    return [n for n, v in (record.get("nodes") or {}).items() if v.get("kind") == "gate"]


def gather(project: Project, chain: list[dict[str, Any]], reader: RunReader) -> ReportData:
    """``chain``: run records, oldest first."""
    store = ArtifactStore(project.objects_dir)
    runs = []
    for i, record in enumerate(chain):
        changes = tuple(compare_parameters(chain[i - 1], record)) if i else ()
        runs.append(
            RunPoint(
                run_id=record["run_id"],
                target=record.get("target") or "?",
                started_at=record.get("started_at"),
                status=record.get("status") or "?",
                teachers=_teachers(record),
                rows_kept=rows_kept(record),
                changes=changes,
            )
        )
    gates = list(dict.fromkeys(g for r in chain for g in _gates(r)))
    pass_rates: dict[str, list[float | None]] = {}
    for gate in gates:
        rates = [((r.get("reports") or {}).get("quality") or {}).get(gate, {}) for r in chain]
        values = [q.get("pass_rate") if isinstance(q, dict) else None for q in rates]
        if any(v is not None for v in values):
            pass_rates[gate] = values
    latest = chain[-1]
    notes: list[str] = []
    data = ReportData(
        runs=runs,
        pass_rates=pass_rates,
        scores=_scores(store, latest, notes),
        timings=_timings(project, store, latest, notes),
        compare=dict((latest.get("reports") or {}).get("compare") or {}),
        flips=[],
        flip_runs=None,
        notes=notes,
    )
    if any(not t.from_cache for t in data.timings):
        data.notes.append(
            "Some generations are no longer in the row cache (gc, or a fresh clone): their "
            "latency and tokens/s are drawn from the run record's p50/p95 instead."
        )
    if len(chain) > 1:
        _flips(project, reader, chain[-2], latest, store, data)
    return data


def _scores(store: ArtifactStore, record: Record, notes: list[str]) -> dict[str, list[float]]:
    """The judge gates' ``score`` columns of the latest run, rows the gate evaluated."""
    out: dict[str, list[float]] = {}
    for name, node in (record.get("nodes") or {}).items():
        recipe = node.get("recipe") or {}
        if node.get("kind") != "gate" or recipe.get("check") != "judge":
            continue
        prefix = recipe.get("prefix") or ""
        column = f"{prefix}score"
        rows = read_columns(store, (node.get("output") or {}).get("digest"), [column], notes)
        values = [float(r[column]) for r in rows if isinstance(r.get(column), int | float)]
        out[f"{name}.{column}"] = values
    return out


def _teacher_label(node: Record) -> str:
    teacher = (node.get("recipe") or {}).get("teacher") or {}
    if isinstance(teacher, dict):
        return f"{teacher.get('provider', '?')} {teacher.get('model', '?')}"
    return str(teacher)


def _timings(
    project: Project, store: ArtifactStore, record: Record, notes: list[str]
) -> list[Timing]:
    out = []
    cache = RowCache(project.cache_dir, readonly=True)
    try:
        for name, node in (record.get("nodes") or {}).items():
            if node.get("kind") != "generate" or "#" in name:
                continue
            stats = node.get("stats") or {}
            timing = ((record.get("reports") or {}).get("timing") or {}).get(name) or {}
            column = C.key_col(name)
            rows = read_columns(store, (node.get("output") or {}).get("digest"), [column], notes)
            lat, tps = _per_call(cache, [r.get(column) for r in rows[:MAX_SAMPLES]])
            out.append(
                Timing(
                    node=name,
                    teacher=_teacher_label(node),
                    latencies_s=tuple(lat),
                    tokens_per_s=tuple(tps),
                    p50_s=stats.get("latency_p50_s"),
                    p95_s=stats.get("latency_p95_s"),
                    mean_tokens_per_s=timing.get("tokens_per_s"),
                    from_cache=bool(lat),
                )
            )
    finally:
        cache.close()
    return out


def _per_call(cache: RowCache, keys: list[Any]) -> tuple[list[float], list[float]]:
    latencies: list[float] = []
    rates: list[float] = []
    for key in dict.fromkeys(k for k in keys if isinstance(k, str)):
        key = key.removeprefix(GEN)
        raw = cache.get_raw(GEN, key)
        if raw is None:
            continue
        try:
            reply = decode(GEN + key, raw)
        except (RecordDamaged, Exception):  # a damaged record is skipped, never dropped
            continue
        total = reply.get("total_duration_ns")
        if isinstance(total, int | float) and total > 0:
            latencies.append(total / 1e9)
        tokens, spent = reply.get("completion_tokens"), reply.get("eval_duration_ns")
        if isinstance(tokens, int | float) and isinstance(spent, int | float) and spent > 0:
            rates.append(tokens / (spent / 1e9))
    return latencies, rates


def _flips(
    project: Project,
    reader: RunReader,
    a: Record,
    b: Record,
    store: ArtifactStore,
    data: ReportData,
) -> None:
    """The rows whose verdict flipped from the run before the latest to the latest, with
    their text (the completion, from the gate's output in either run)."""
    try:
        diff = diff_runs(
            project, a["run_id"], b["run_id"], DiffOptions(examples=FLIP_EXAMPLES), reader
        )
    except FdbuildError as exc:
        data.notes.append(f"row flips not shown: {exc.message}")
        return
    data.flip_runs = (a["run_id"], b["run_id"])
    texts: dict[tuple[str, str], str] = {}
    for rows in diff.rows:
        data.flip_counts[rows.node] = (rows.kept_to_dropped or 0) + (rows.dropped_to_kept or 0)
        for ex in rows.examples:
            if ex.change not in ("kept->dropped", "dropped->kept"):
                continue
            gate = ex.gate or rows.node
            if (gate, ex.row_id) not in texts:
                texts.update(_texts(store, (a, b), gate, data.notes))
            data.flips.append(
                Flip(
                    rows.node,
                    ex.gate,
                    ex.row_id,
                    ex.change,
                    ex.detail,
                    texts.get((gate, ex.row_id)),
                )
            )


def _texts(
    store: ArtifactStore, records: tuple[Record, ...], gate: str, notes: list[str]
) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for record in records:
        node = (record.get("nodes") or {}).get(gate) or {}
        for row in read_columns(
            store, (node.get("output") or {}).get("digest"), [C.ID, C.COMPLETION], notes
        ):
            if row.get(C.COMPLETION) is not None:
                out[(gate, str(row[C.ID]))] = str(row[C.COMPLETION])
    return out
