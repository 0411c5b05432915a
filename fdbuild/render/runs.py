"""Render ``fdbuild log`` and ``fdbuild show`` from run records."""

from __future__ import annotations

from typing import Any


def _teacher(record: dict[str, Any]) -> str:
    parts = []
    for name, t in sorted(record.get("teachers", {}).items()):
        parts.append(f"{name}={t.get('model')}@{str(t.get('digest') or '')[:12]}")
    return ", ".join(parts) or "-"


def _kept(record: dict[str, Any]) -> int | None:
    exports = [n for n in record["nodes"].values() if n["kind"] == "export"]
    if exports:
        return exports[-1]["output"]["rows"]
    return None


def log_rows(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{
        "run_id": r["run_id"], "parent": r.get("parent"), "time": r.get("started_at"),
        "teachers": {n: {"model": t.get("model"), "digest": t.get("digest")}
                     for n, t in r.get("teachers", {}).items()},
        "rows_kept": _kept(r), "teacher_calls": r["totals"]["teacher_calls"],
        "failed": r["totals"]["failed"], "overrides": r.get("overrides", []),
    } for r in chain]


def render_log(chains: dict[str, list[dict[str, Any]]]) -> str:
    if not chains:
        return "no runs yet (fdbuild.lock has no targets); run `fdbuild build TARGET`"
    lines = []
    for target, chain in chains.items():
        lines.append(f"target {target}")
        for row in log_rows(chain):
            teachers = ", ".join(f"{n}={t['model']}@{str(t['digest'] or '')[:12]}"
                                 for n, t in sorted(row["teachers"].items())) or "-"
            extra = f"  set: {' '.join(row['overrides'])}" if row["overrides"] else ""
            fails = f"  failed {row['failed']}" if row["failed"] else ""
            lines.append(f"  {row['run_id']}  parent {row['parent'] or '-':<23}  {row['time']}  "
                         f"{teachers}  kept {row['rows_kept'] if row['rows_kept'] is not None else '-'}  "
                         f"calls {row['teacher_calls']}{fails}{extra}")
    return "\n".join(lines)


def render_show(record: dict[str, Any]) -> str:
    lines = [
        f"run      {record['run_id']}",
        f"target   {record['target']} ({record['file']})",
        f"parent   {record.get('parent') or '-'}",
        f"status   {record['status']}",
        f"time     {record['started_at']} .. {record['finished_at']} ({record['wall_s']}s)",
        f"teachers {_teacher(record)}",
    ]
    if record.get("overrides"):
        lines.append(f"set      {' '.join(record['overrides'])}")
    lines.append("")
    lines.append(f"{'node':<24} {'kind':<9} {'in':>7} {'out':>7} {'cached':>7} {'computed':>8} "
                 f"{'failed':>6} {'calls':>6} {'wall_s':>7}")
    for name, node in record["nodes"].items():
        s = node["stats"]
        lines.append(f"{name:<24} {node['kind']:<9} {s['rows_in']:>7} {s['rows_out']:>7} {s['cached']:>7} "
                     f"{s['computed']:>8} {s['failed']:>6} {s['teacher_calls']:>6} {s['wall_s']:>7.2f}")
    quality = record.get("reports", {}).get("quality", {})
    if quality:
        lines.append("\nquality")
        for name, q in quality.items():
            extra = "  ".join(f"{k}={v}" for k, v in q.items() if k not in ("rows_in", "evaluated", "kept", "pass_rate"))
            rate = f"{q['pass_rate']:.1%}" if q.get("pass_rate") is not None else "-"
            lines.append(f"  {name:<22} kept {q['kept']}/{q['evaluated']} ({rate})  {extra}".rstrip())
    timing = record.get("reports", {}).get("timing", {})
    if timing:
        lines.append("\ntiming")
        for name, t in timing.items():
            lines.append(f"  {name:<22} wall {t['wall_s']}s  calls {t['teacher_calls']}  "
                         f"p50 {t['latency_p50_s']}s  p95 {t['latency_p95_s']}s  "
                         f"tokens {t['prompt_tokens']}+{t['completion_tokens']}  "
                         f"tok/s {t['tokens_per_s']}  cache hit {t['cache_hit_rate']}")
    if record.get("failures"):
        lines.append(f"\nfailures ({len(record['failures'])})")
        for f in record["failures"][:50]:
            lines.append(f"  {f['node']} {f['row_id']}: {f['reason']} {f['detail'][:120]}")
    return "\n".join(lines)
