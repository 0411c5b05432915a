"""The build summary's line per teacher pool: light on imports, since every build prints
it (``fdbuild.render.runs`` pulls in the row diff, numpy and pyarrow)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Record = Mapping[str, Any]


def number(value: Any, digits: int = 2) -> str:
    """A figure as a table shows it: '-' for none, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def host_summary_lines(record: Record) -> list[str]:
    """One line per teacher of several hosts (or whose one host failed), for the
    summary a build prints: ``hosts main: URL 40 req p50 0.031s p95 0.06s, ...``."""
    lines = []
    for name, hosts in sorted((record.get("hosts") or {}).items()):
        if not isinstance(hosts, list) or not hosts:
            continue
        if len(hosts) == 1 and not (hosts[0].get("failures") or hosts[0].get("benched")):
            continue
        parts = []
        for h in hosts:
            part = f"{h.get('url')} {number(h.get('requests'))} req"
            if h.get("p50_s") is not None:
                part += f" p50 {number(h.get('p50_s'), 3)}s p95 {number(h.get('p95_s'), 3)}s"
            if h.get("failures"):
                part += f", {h['failures']} failed"
            if h.get("benched"):
                part += f", benched {h['benched']}x"
            if h.get("excluded"):
                part += ", excluded (other weights)"
            parts.append(part)
        lines.append(f"  hosts {name}: " + "; ".join(parts))
    return lines
