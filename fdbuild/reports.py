"""Per-run quality and timing reports, computed from a run record's node stats, and
the funnel (``fdbuild/funnel.py``), computed from the node outputs when they can be read."""

from __future__ import annotations

from typing import Any

from fdbuild.funnel import ReadColumns, funnel_reports


def build_reports(record: dict[str, Any], read: ReadColumns | None = None) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for name, node in record["nodes"].items():
        stats = node["stats"]
        if node["kind"] == "gate":
            rows = node["output"]["rows"]
            kept = stats.get("kept")
            quality[name] = {
                "rows_in": stats["rows_in"],
                "evaluated": rows,
                "kept": kept,
                "pass_rate": round(kept / rows, 4) if rows and kept is not None else None,
                **(stats.get("quality") or {}),
            }
        if node["kind"] in ("generate", "gate"):
            wall = stats["wall_s"]
            tokens = stats.get("completion_tokens", 0)
            units = stats["cached"] + stats["computed"]
            timing[name] = {
                "wall_s": wall,
                "teacher_calls": stats["teacher_calls"],
                "latency_p50_s": stats.get("latency_p50_s"),
                "latency_p95_s": stats.get("latency_p95_s"),
                "prompt_tokens": stats.get("prompt_tokens", 0),
                "completion_tokens": tokens,
                "tokens_per_s": round(tokens / wall, 2) if wall and tokens else None,
                "cache_hit_rate": round(stats["cached"] / units, 4) if units else None,
            }
    reports: dict[str, Any] = {"quality": quality, "timing": timing}
    if read is not None:
        reports["funnel"] = funnel_reports(record, read)
    return reports
