"""Render ``fdbuild log`` and ``fdbuild show`` from run records; pure functions.

Run records store nodes sorted by name; both views show them in data-flow order
(``fdbuild.diff.runs.node_order``), the order the build ran them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fdbuild.records import FROM_LOCK_NOTE, is_from_lock, node_order, rows_kept, teacher_summary
from fdbuild.render.diff import flow
from fdbuild.render.hosts import number as _num

Record = Mapping[str, Any]


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()
) -> list[str]:
    cells = [[str(c) for c in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]


# --------------------------------------------------------------------------- log


def log_rows(chain: Sequence[Record]) -> list[dict[str, Any]]:
    """One JSON-able entry per run of a chain, newest first (``fdbuild log --json``)."""
    return [
        {
            "run_id": r["run_id"],
            "parent": r.get("parent"),
            "target": r.get("target"),
            "time": r.get("started_at"),
            "status": r.get("status"),
            "teachers": {
                n: {
                    "model": t.get("model"),
                    "digest": t.get("digest"),
                    "server_version": t.get("server_version"),
                }
                for n, t in sorted((r.get("teachers") or {}).items())
            },
            "rows_kept": rows_kept(r),
            "exports": {
                n: node["output"].get("rows")
                for n, node in sorted(r.get("nodes", {}).items())
                if node.get("kind") == "export"
            },
            "teacher_calls": (r.get("totals") or {}).get("teacher_calls"),
            "failed": (r.get("totals") or {}).get("failed"),
            "overrides": list(r.get("overrides") or []),
            "wall_s": r.get("wall_s"),
            "from_lock": is_from_lock(r),
        }
        for r in chain
    ]


def render_log(
    chains: Mapping[str, Sequence[Record]], stops: Mapping[str, str] | None = None
) -> str:
    """The chains as tables; ``stops``: per target, the run its chain stops at and why
    (``<run_id>, which has no run record in this checkout``). Runs known only from fdbuild.lock are
    marked ``*`` and explained under their table."""
    if not chains:
        return "no runs yet (fdbuild.lock has no targets); run `fdbuild build TARGET`"
    stops = stops or {}
    lines: list[str] = []
    for target, chain in chains.items():
        if lines:
            lines.append("")
        file = chain[0].get("file") if chain else None
        lines.append(f"target {target}" + (f" ({file})" if file else "") + f": {len(chain)} run(s)")
        rows = []
        for record, row in zip(chain, log_rows(chain), strict=True):
            other = f"[{row['target']}] " if row["target"] != target else ""
            rows.append(
                (
                    row["run_id"] + ("*" if row["from_lock"] else ""),
                    row["parent"] or "-",
                    (row["time"] or "-").replace("T", " "),
                    teacher_summary(record),
                    _num(row["rows_kept"]),
                    _num(row["teacher_calls"]),
                    _num(row["failed"]),
                    other + (" ".join(row["overrides"]) or "-"),
                )
            )
        lines += [
            "  " + line
            for line in _table(
                ("run_id", "parent", "when", "teacher", "kept", "calls", "failed", "--set"),
                rows,
                right=(4, 5, 6),
            )
        ]
        if any(is_from_lock(r) for r in chain):
            lines.append(f"  * {FROM_LOCK_NOTE} (calls, failures and timing unknown)")
        if target in stops:
            lines.append(f"  the chain stops at {stops[target]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- show


def _teacher_lines(record: Record) -> list[str]:
    rows = [
        (
            name,
            t.get("provider") or "-",
            t.get("model") or "-",
            t.get("digest") or "-",
            t.get("server_version") or "-",
        )
        for name, t in sorted((record.get("teachers") or {}).items())
    ]
    return _table(("teacher", "provider", "model", "digest", "server"), rows) if rows else []


def _host_lines(record: Record) -> list[str]:
    """Per teacher and host: requests, failures, times benched, latency p50/p95. Shown
    for a teacher of several hosts, or one whose host failed or was benched."""
    rows = []
    for name, hosts in sorted((record.get("hosts") or {}).items()):
        if not isinstance(hosts, list):
            continue
        if len(hosts) == 1 and not (hosts[0].get("failures") or hosts[0].get("benched")):
            continue  # one server that never failed: the teacher line says it all
        for h in hosts:
            rows.append(
                (
                    name,
                    h.get("url") or "-",
                    _num(h.get("concurrency")),
                    _num(h.get("requests")),
                    _num(h.get("failures")),
                    _num(h.get("benched")),
                    _num(h.get("p50_s"), 3),
                    _num(h.get("p95_s"), 3),
                    h.get("excluded") or "",
                )
            )
    if not rows:
        return []
    headers = ("teacher", "host", "conc", "requests", "failed", "benched", "p50_s", "p95_s", "")
    return _table(headers, rows, right=tuple(range(2, 8)))


def _param_lines(recipe: Mapping[str, Any]) -> list[str]:
    """A recipe as ``key  value`` lines; texts as indented blocks, unset values left out."""
    lines: list[str] = []
    items = [(k, v) for k, v in recipe.items() if k != "kind" and v not in (None, {}, [])]
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        if key in ("teacher", "judge_teacher") and isinstance(value, Mapping):
            value = f"{value.get('model')}@{value.get('digest')} ({value.get('provider')})"
        if isinstance(value, str) and ("\n" in value or key in ("template", "system")):
            text = value.splitlines() or [""]
            lines.append(f"{key:<{width}}  | {text[0]}")
            lines += [f"{'':<{width}}  | {line}" for line in text[1:]]
        else:
            lines.append(f"{key:<{width}}  {flow(value) if not isinstance(value, str) else value}")
    return lines


def _node_rows(record: Record, order: Sequence[str]) -> list[str]:
    rows = []
    for name in order:
        node = record["nodes"][name]
        s = node.get("stats") or {}
        rows.append(
            (
                name,
                node.get("kind", "?"),
                "-" if is_from_lock(record) else "reused" if s.get("memo_hit") else "built",
                _num(s.get("rows_in")),
                _num(node.get("output", {}).get("rows")),
                _num(s.get("cached")),
                _num(s.get("computed")),
                _num(s.get("failed")),
                _num(s.get("teacher_calls")),
                _num(s.get("wall_s")),
            )
        )
    return _table(
        ("node", "kind", "status", "in", "out", "cached", "computed", "failed", "calls", "wall_s"),
        rows,
        right=tuple(range(3, 10)),
    )


def _quality_lines(quality: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, q in quality.items():
        extra = "  ".join(
            f"{k}={flow(v) if isinstance(v, (dict, list)) else _num(v, 4)}"
            for k, v in sorted(q.items())
            if k not in ("rows_in", "evaluated", "kept", "pass_rate") and v is not None
        )
        rate = f"{q['pass_rate']:.1%}" if q.get("pass_rate") is not None else "-"
        rows.append(
            (
                name,
                _num(q.get("rows_in")),
                _num(q.get("evaluated")),
                _num(q.get("kept")),
                rate,
                extra or "-",
            )
        )
    return _table(
        ("gate", "rows_in", "evaluated", "kept", "pass rate", "other"), rows, right=(1, 2, 3, 4)
    )


def _timing_lines(timing: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, t in timing.items():
        hit = t.get("cache_hit_rate")
        rows.append(
            (
                name,
                _num(t.get("wall_s")),
                _num(t.get("teacher_calls")),
                _num(t.get("latency_p50_s"), 3),
                _num(t.get("latency_p95_s"), 3),
                _num(t.get("prompt_tokens")),
                _num(t.get("completion_tokens")),
                _num(t.get("tokens_per_s"), 1),
                f"{hit:.0%}" if hit is not None else "-",
            )
        )
    return _table(
        (
            "node",
            "wall_s",
            "calls",
            "p50_s",
            "p95_s",
            "prompt tok",
            "compl tok",
            "tok/s",
            "cache hit",
        ),
        rows,
        right=tuple(range(1, 9)),
    )


def render_show(record: Record, *, max_failures: int = 50) -> str:
    """One run's record: header, teachers (and their hosts), resolved parameters per node,
    per-node counts, the quality and timing reports, and failures."""
    totals = record.get("totals") or {}
    lines = [
        f"run       {record['run_id']}",
        f"target    {record.get('target')} ({record.get('file')})",
        f"parent    {record.get('parent') or '-'}",
    ]
    if is_from_lock(record):
        lines += [
            f"status    {_num(rows_kept(record))} row(s) exported",
            f"time      started {record.get('started_at') or '-'} (from the run id)",
        ]
    else:
        lines += [
            f"status    {record.get('status')}: {_num(totals.get('teacher_calls'))} teacher "
            f"call(s), {_num(totals.get('failed'))} failed row(s), "
            f"{_num(rows_kept(record))} row(s) exported",
            f"time      {record.get('started_at')} .. {record.get('finished_at')} "
            f"({_num(record.get('wall_s'))}s)",
        ]
    if record.get("argv"):
        lines.append(f"command   {' '.join(record['argv'])}")
    if record.get("overrides"):
        lines.append(f"--set     {' '.join(record['overrides'])}")
    if record.get("offline"):
        lines.append("offline   yes (no teacher was called)")
    if is_from_lock(record):
        lines.insert(
            1,
            f"source    {FROM_LOCK_NOTE}: parameters (long texts as digests), digests and "
            "row counts only; counts of cached and computed rows, timing, reports and "
            "failures are not known",
        )
    teachers = _teacher_lines(record)
    if teachers:
        lines += ["", *teachers]
    hosts = _host_lines(record)
    if hosts:
        lines += ["", "hosts", *[f"  {line}" for line in hosts]]
    order = node_order(record)
    lines += ["", "parameters"]
    for name in order:
        node = record["nodes"][name]
        lines.append(f"  {name} ({node.get('kind')})")
        lines += [f"    {line}" for line in _param_lines(node.get("recipe") or {})]
    lines += ["", "nodes", *[f"  {line}" for line in _node_rows(record, order)]]
    reports = record.get("reports") or {}
    if reports.get("quality"):
        lines += ["", "quality", *[f"  {line}" for line in _quality_lines(reports["quality"])]]
    if reports.get("timing"):
        lines += ["", "timing", *[f"  {line}" for line in _timing_lines(reports["timing"])]]
    failures = record.get("failures") or []
    if failures:
        lines += ["", f"failures ({len(failures)})"]
        for f in failures[:max_failures]:
            lines.append(
                f"  {f.get('node')} {f.get('row_id')}: {f.get('reason')} "
                f"(attempts {f.get('attempts', 1)}) {str(f.get('detail') or '')[:120]}".rstrip()
            )
        if len(failures) > max_failures:
            lines.append(
                f"  ... and {len(failures) - max_failures} more (`fdbuild show --json` has all)"
            )
    return "\n".join(lines)
