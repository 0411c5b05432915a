"""Pure helpers over run records (``.fdbuild/runs/<run_id>.json``), shared by ``diff``,
``log`` and ``show``.

Run records store their nodes sorted by name (the record is JSON with sorted keys), so
the build order is recovered from the data flow: a node comes after the nodes whose
output digests it reads (``node_order``). A ``select`` that keeps every row has the
same output digest as its gate; ties like that are broken by kind.

A record may also come from ``fdbuild.lock`` (``lock_record``: marked ``from_lock``) when
the run's own record is not in the checkout. Such a record has what the lock keeps
(nodes' recipes with long texts as digests, input and output digests, row counts,
teachers, parent, overrides) and nothing the lock does not: no stats, totals, reports or
failures. Every helper here reads those with defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Record = Mapping[str, Any]

FROM_LOCK_NOTE = "from fdbuild.lock; run record not in this checkout"

_KIND_RANK = {"source": 0, "generate": 1, "gate": 2, "select": 3, "export": 9}


def node_order(record: Record) -> list[str]:
    """Node names in data-flow order: sources first, each node after its producers;
    ties broken by kind (gate before select before export), then name."""
    nodes = record.get("nodes", {})
    recorded = record.get("node_order")
    if recorded and set(recorded) == set(nodes):  # written by fdbuild >= this change
        return list(recorded)
    producers: dict[str, set[str]] = {}
    for name, node in nodes.items():
        digest = node.get("output", {}).get("digest")
        if digest and node.get("kind") != "export":
            producers.setdefault(digest, set()).add(name)
    done: set[str] = set()
    order: list[str] = []
    remaining = set(nodes)

    def rank(name: str) -> tuple[int, str]:
        return (_KIND_RANK.get(nodes[name].get("kind", ""), 5), name)

    def ready(name: str) -> bool:
        return all(
            d in done or not (producers.get(d, set()) - {name})
            for d in nodes[name].get("input_digests") or []
        )

    while remaining:
        candidates = [n for n in remaining if ready(n)] or list(remaining)
        chosen = min(candidates, key=rank)
        remaining.discard(chosen)
        order.append(chosen)
        digest = nodes[chosen].get("output", {}).get("digest")
        if digest and nodes[chosen].get("kind") != "export":
            done.add(digest)
    return order


def producer(record: Record, digest: str | None, before: str | None = None) -> str | None:
    """The node whose output ``digest`` is, the latest in data-flow order (a ``select``
    that keeps every row has its gate's digest; the select is the one read next)."""
    if not digest:
        return None
    found = None
    for name in node_order(record):
        if name == before:
            break
        node = record["nodes"][name]
        if node.get("kind") != "export" and node.get("output", {}).get("digest") == digest:
            found = name
    return found


def export_inputs(record: Record) -> list[str]:
    """The nodes the exports read, in order, without repeats."""
    out: list[str] = []
    for name in node_order(record):
        node = record["nodes"][name]
        if node.get("kind") == "export":
            src = producer(record, (node.get("input_digests") or [None])[0], before=name)
            if src and src not in out:
                out.append(src)
    return out


def short_digest(digest: Any) -> str:
    """The first 12 hex digits of a model digest, without an algorithm prefix
    (``sha256:b179c...`` from llama.cpp files, bare hex from Ollama)."""
    text = str(digest or "?")
    return text.split(":", 1)[-1][:12]


def teacher_summary(record: Record) -> str:
    """``model@digest12`` per teacher (named when there are several)."""
    teachers = record.get("teachers") or {}
    parts = [
        f"{t.get('model')}@{short_digest(t.get('digest'))}" for _, t in sorted(teachers.items())
    ]
    if len(parts) > 1:
        parts = [f"{n}={p}" for n, p in zip(sorted(teachers), parts, strict=True)]
    return ", ".join(parts) or "-"


def rows_kept(record: Record) -> int | None:
    """Rows the run exported (the largest export, when there are several)."""
    counts: list[int] = [
        rows
        for n in record.get("nodes", {}).values()
        if n.get("kind") == "export" and (rows := (n.get("output") or {}).get("rows")) is not None
    ]
    return max(counts) if counts else None


def started_from_id(run_id: str) -> str | None:
    """``20261125T215537Z-704ff6`` -> ``2026-11-25T21:55:37Z`` (the run id is its start)."""
    stamp = run_id.split("-", 1)[0]
    if len(stamp) != 16 or stamp[8] != "T" or not stamp.endswith("Z"):
        return None
    d, t = stamp[:8], stamp[9:15]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:4]}:{t[4:]}Z"


def lock_record(target: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A run record made from a target's entry in ``fdbuild.lock``: what can be known of
    the run when its own record is not in the checkout."""
    run_id = entry["run"]
    return {
        "schema": 1,
        "from_lock": True,
        "run_id": run_id,
        "parent": entry.get("parent"),
        "target": target,
        "file": entry.get("file"),
        "started_at": started_from_id(run_id),
        "overrides": list(entry.get("overrides") or []),
        "teachers": {n: dict(t) for n, t in (entry.get("teachers") or {}).items()},
        "nodes": {
            name: {
                "kind": node["kind"],
                "recipe": dict(node.get("recipe") or {}),
                "input_digests": list(node.get("input_digests") or []),
                "output": dict(node.get("output") or {}),
            }
            for name, node in (entry.get("nodes") or {}).items()
        },
    }


def is_from_lock(record: Record) -> bool:
    return bool(record.get("from_lock"))


def run_kind(record: Record) -> str | None:
    """``offline``, ``no-op`` (every node reused or nothing computed, no teacher call) or
    None for a run that did work. Its wall time measures cache reads, not work."""
    if record.get("offline"):
        return "offline"
    nodes = record.get("nodes", {}).values()
    if is_from_lock(record) or not nodes:
        return None
    if (record.get("totals") or {}).get("teacher_calls"):
        return None
    stats = [n.get("stats") or {} for n in nodes]
    if all(s.get("memo_hit") or not s.get("computed") for s in stats):
        return "no-op"
    return None


def run_metrics(record: Record) -> dict[str, tuple[float | None, str]]:
    """Every metric of one run, by name: (value, unit). Names are stable across runs."""
    out: dict[str, tuple[float | None, str]] = {}
    nodes = record.get("nodes", {})
    order = node_order(record)
    for name in order:
        out[f"rows {name}"] = (nodes[name].get("output", {}).get("rows"), "count")
    gates_in = [
        (nodes[n].get("stats") or {}).get("rows_in") for n in order if nodes[n]["kind"] == "gate"
    ]
    first_in = max((r for r in gates_in if r), default=None)
    for name in order:
        if nodes[name]["kind"] == "export" and first_in:
            kept = (nodes[name].get("stats") or {}).get("rows_in")
            out[f"keep rate {name}"] = (
                round(kept / first_in, 4) if kept is not None else None,
                "rate",
            )
    reports = record.get("reports") or {}
    for gate, q in (reports.get("quality") or {}).items():
        out[f"pass rate {gate}"] = (q.get("pass_rate"), "rate")
        for key, value in sorted(q.items()):
            if key in ("rows_in", "evaluated", "kept", "pass_rate"):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{key} {gate}"] = (value, "rate" if key.endswith("_rate") else "score")
    stats = [n.get("stats") or {} for n in nodes.values()]
    unknown = is_from_lock(record)
    out["prompt tokens"] = (
        None if unknown else sum(s.get("prompt_tokens") or 0 for s in stats),
        "count",
    )
    out["completion tokens"] = (
        None if unknown else sum(s.get("completion_tokens") or 0 for s in stats),
        "count",
    )
    totals = record.get("totals") or {}
    out["teacher calls"] = (totals.get("teacher_calls"), "count")
    out["failed rows"] = (totals.get("failed"), "count")
    out["wall time"] = (record.get("wall_s"), "seconds")
    for name, t in (reports.get("timing") or {}).items():
        if t.get("teacher_calls"):
            out[f"tokens/s {name}"] = (t.get("tokens_per_s"), "per_s")
    return out
