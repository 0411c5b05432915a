"""Render a ``Diff``: plain text for the terminal, Markdown for a PR or notes, and a
JSON-able dict. Pure functions; every section is skipped when empty, and all three
carry the same facts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from fdbuild.diff.rows import NodeRows, RowExample
from fdbuild.diff.runs import Diff, Metric, NodeChange, ParamChange

_CELL = 38  # text-mode width of a before/after cell


# --------------------------------------------------------------------------- values


def flow(value: Any) -> str:
    """A value as compact YAML flow text: ``{rule_reason: ok}``, ``[a, b]``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value and value.strip() == value else json.dumps(value)
    return str(value)


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 3] + "..."


def format_metric(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        return f"{value:.2f}s"
    if unit in ("per_s", "score"):
        return f"{value:.3g}" if unit == "score" else f"{value:.1f}"
    return f"{int(value)}" if float(value).is_integer() else f"{value}"


def format_change(metric: Metric) -> str:
    change = metric.change
    if change is None:
        return "-"
    if not change:
        return "0"
    if metric.unit == "rate":
        return f"{change * 100:+.1f} pp"
    text = {"seconds": f"{change:+.2f}s", "per_s": f"{change:+.1f}", "score": f"{change:+.3g}"}.get(
        metric.unit, f"{int(change):+d}" if float(change).is_integer() else f"{change:+}"
    )
    if metric.percent is not None:
        text += f" ({metric.percent:+.0%})"
    return text


def percent_footnote(metrics: Sequence[Metric]) -> str | None:
    """One line saying which percent changes are left out and why (``None``: none are)."""
    reasons: dict[str, list[str]] = {}
    for m in metrics:
        if m.percent_omitted and m.change:
            reasons.setdefault(m.percent_omitted, []).append(m.name)
    if not reasons:
        return None
    return "no % change for " + "; ".join(
        f"{', '.join(names)} ({why})" for why, names in reasons.items()
    )


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> list[str]:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    out = []
    for row in [headers, *rows]:
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


# --------------------------------------------------------------------------- json


def diff_to_dict(diff: Diff) -> dict[str, Any]:
    """The diff as one JSON-able object (``fdbuild diff --json``)."""
    return {
        "a": dataclasses.asdict(diff.a),
        "b": dataclasses.asdict(diff.b),
        "parameters": [dataclasses.asdict(p) for p in diff.parameters],
        "nodes": [
            dataclasses.asdict(n)
            | {"reasons": list(n.reasons), "recorded_reasons": list(n.recorded_reasons)}
            for n in diff.nodes
        ],
        "unchanged_nodes": list(diff.unchanged),
        "recomputed": dict(diff.summary),
        "metrics": [
            {
                "metric": m.name,
                "a": m.a,
                "b": m.b,
                "change": m.change,
                "unit": m.unit,
                "percent_omitted": m.percent_omitted,
            }
            for m in diff.metrics
        ],
        "rows": [_rows_dict(r) for r in diff.rows],
        "notes": list(diff.notes),
    }


def _rows_dict(rows: NodeRows) -> dict[str, Any]:
    out = dataclasses.asdict(rows)
    out["fields"] = list(rows.fields)
    out["notes"] = list(rows.notes)
    out["examples"] = [dataclasses.asdict(e) for e in rows.examples]
    return out


# --------------------------------------------------------------------------- text


def render_text(diff: Diff) -> str:
    lines = [f"diff A {_run_line(diff.a)}", f"  -> B {_run_line(diff.b)}"]
    lines += [f"  note: {n}" for n in diff.notes]
    head = len(lines)
    for title, body in _sections(diff, markdown=False):
        lines += ["", title, *[f"  {line}" if line else "" for line in body]]
    if len(lines) == head:
        lines += ["", "no differences: same parameters, same rows"]
    return "\n".join(lines)


def _run_line(info: Any) -> str:
    source = ", from fdbuild.lock" if info.from_lock else ""
    return f"{info.run_id}  ({info.target}, {info.started_at or '?'}, {info.teachers}{source})"


def _sections(diff: Diff, *, markdown: bool) -> list[tuple[str, list[str]]]:
    out = []
    if diff.parameters:
        out.append(
            (
                "Parameters",
                _params_md(diff.parameters) if markdown else _params_text(diff.parameters),
            )
        )
    if diff.nodes or diff.unchanged:
        body = _nodes_md(diff) if markdown else _nodes_text(diff)
        out.append(("Nodes", body))
    if diff.metrics:
        out.append(("Metrics", _metrics(diff.metrics, markdown)))
    if diff.rows:
        body = []
        for rows in diff.rows:
            body += ([""] if body else []) + (_rows_md(rows) if markdown else _rows_text(rows))
        out.append(("Rows", body))
    return out


def _params_text(params: Sequence[ParamChange]) -> list[str]:
    """Short values in a table; long ones (digests) as A/B lines; texts as unified diffs."""
    short = [p for p in params if p.text_diff is None and _fits(p)]
    lines = (
        _table(
            ("scope", "parameter", "A", "B"),
            [(p.scope, p.name, flow(p.before), flow(p.after)) for p in short],
        )
        if short
        else []
    )
    for p in params:
        if p.text_diff is not None:
            block = [f"{p.scope} {p.name}:", *[f"  {line}" for line in p.text_diff.splitlines()]]
        elif p not in short:
            block = [
                f"{p.scope} {p.name}:",
                f"  A  {_clip(flow(p.before), 200)}",
                f"  B  {_clip(flow(p.after), 200)}",
            ]
        else:
            continue
        lines += ([""] if lines else []) + block
    return lines


def _fits(param: ParamChange) -> bool:
    return max(len(flow(param.before)), len(flow(param.after))) <= 40


def _node_why(node: NodeChange) -> str:
    why = list(node.reasons)
    if node.status == "reused" and why:
        why.append("reused from cache (no work)")
    if node.recorded_reasons:
        why.append("recorded: " + "; ".join(node.recorded_reasons))
    return "; ".join(why) or "-"


def _nodes_text(diff: Diff) -> list[str]:
    s = diff.summary
    lines = [
        f"B computed {s.get('generations', 0)} generation(s) and {s.get('evaluations', 0)} "
        f"evaluation(s); {s.get('teacher_calls', 0)} teacher call(s), {s.get('failed', 0)} failed"
    ]
    rows = [
        (n.node, n.kind, n.status, n.cached, n.computed, n.teacher_calls, _node_why(n))
        for n in diff.nodes
    ]
    if rows:
        lines += _table(
            ("node", "kind", "status", "cached", "computed", "calls", "why"), rows, right=(3, 4, 5)
        )
    if diff.unchanged:
        lines.append(f"unchanged (reused): {', '.join(diff.unchanged)}")
    return lines


def _metrics(metrics: Sequence[Metric], markdown: bool) -> list[str]:
    rows = [
        (m.name, format_metric(m.a, m.unit), format_metric(m.b, m.unit), format_change(m))
        for m in metrics
    ]
    note = percent_footnote(metrics)
    if markdown:
        return _md_table(("metric", "A", "B", "change"), rows) + (["", note] if note else [])
    return _table(("metric", "A", "B", "change"), rows, right=(1, 2, 3)) + ([note] if note else [])


def _counts(rows: NodeRows) -> list[tuple[str, int | None]]:
    return [
        ("added", rows.added),
        ("removed", rows.removed),
        ("changed", rows.changed),
        ("kept->dropped", rows.kept_to_dropped),
        ("dropped->kept", rows.dropped_to_kept),
        ("unchanged", rows.unchanged),
    ]


def _rows_title(rows: NodeRows) -> str:
    via = f" (exported by {rows.via})" if rows.via else ""
    fields = ", ".join(rows.fields) or "-"
    return (
        f"{rows.node}{via}: A {_n_rows(rows.rows_a)}, B {_n_rows(rows.rows_b)}; compared: {fields}"
    )


def _n_rows(count: int | None) -> str:
    return "- rows" if count is None else f"{count} row" + ("" if count == 1 else "s")


def _rows_text(rows: NodeRows) -> list[str]:
    lines = [_rows_title(rows)]
    if rows.added is not None:
        lines.append("  " + "  ".join(f"{k} {v}" for k, v in _counts(rows)))
    lines += [f"  note: {n}" for n in rows.notes]
    if rows.examples:
        table = [
            (
                e.row_id,
                e.change,
                e.field or "-",
                *side_by_side(e.before, e.after, _CELL),
                e.gate or "",
            )
            for e in rows.examples
        ]
        rendered = _table(("id", "change", "field", "before (A)", "after (B)", "gate"), table)
        lines.append("  " + rendered[0])
        for example, line in zip(rows.examples, rendered[1:], strict=True):
            lines.append("  " + line)
            if example.detail:
                lines.append(f"      {example.gate}: {example.detail}")
    return lines


def side_by_side(before: Any, after: Any, width: int) -> tuple[str, str]:
    """Both values clipped to ``width``; when they share a long start, both are shown
    from just before their first difference, so the cells never look the same."""
    texts = ["-" if v is None else (v if isinstance(v, str) else flow(v)) for v in (before, after)]
    texts = [t.replace("\n", "\\n") for t in texts]
    start = 0
    if before is not None and after is not None:
        common = 0
        for x, y in zip(texts[0], texts[1], strict=False):
            if x != y:
                break
            common += 1
        if common > width - 12 and texts[0] != texts[1]:
            start = common - 8
    out = [("..." + t[start:]) if start else t for t in texts]
    return _clip(out[0], width), _clip(out[1], width)


# --------------------------------------------------------------------------- markdown


def _md(value: Any) -> str:
    text = value if isinstance(value, str) else flow(value)
    text = text.replace("|", "\\|").replace("\n", "<br>")
    return text if len(text) <= 300 else text[:297] + "..."


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(diff: Diff) -> str:
    lines = [f"## fdbuild diff `{diff.a.run_id}` -> `{diff.b.run_id}`", ""]
    lines += _md_table(
        ("", "run", "target", "started", "teacher"),
        [
            (side, f"`{info.run_id}`", info.target, info.started_at or "?", info.teachers)
            for side, info in (("A", diff.a), ("B", diff.b))
        ],
    )
    if diff.notes:
        lines += ["", *[f"Note: {n}" for n in diff.notes]]
    for title, body in _sections(diff, markdown=True):
        lines += ["", f"### {title}", "", *body]
    return "\n".join(lines).rstrip() + "\n"


def _params_md(params: Sequence[ParamChange]) -> list[str]:
    rows = [
        (
            p.scope,
            f"`{p.name}`",
            "(text, see diff)" if p.text_diff is not None else p.before,
            "" if p.text_diff is not None else p.after,
        )
        for p in params
    ]
    lines = _md_table(("scope", "parameter", "A", "B"), rows)
    for p in params:
        if p.text_diff is not None:
            lines += ["", f"`{p.scope}` `{p.name}`:", "", "```diff", p.text_diff, "```"]
    return lines


def _nodes_md(diff: Diff) -> list[str]:
    s = diff.summary
    lines = [
        f"B computed {s.get('generations', 0)} generation(s) and {s.get('evaluations', 0)} "
        f"evaluation(s); {s.get('teacher_calls', 0)} teacher call(s), {s.get('failed', 0)} failed.",
        "",
    ]
    if diff.nodes:
        lines += _md_table(
            ("node", "kind", "status", "cached", "computed", "teacher calls", "why"),
            [
                (n.node, n.kind, n.status, n.cached, n.computed, n.teacher_calls, _node_why(n))
                for n in diff.nodes
            ],
        )
    if diff.unchanged:
        lines += ["", f"Unchanged (reused): {', '.join(diff.unchanged)}"]
    return lines


def _rows_md(rows: NodeRows) -> list[str]:
    lines = [f"#### {_rows_title(rows)}", ""]
    if rows.added is not None:
        counts = _counts(rows)
        lines += _md_table([k for k, _ in counts], [[v for _, v in counts]]) + [""]
    lines += [f"Note: {n}" for n in rows.notes]
    if rows.examples:
        lines += _md_table(
            ("id", "change", "field", "before (A)", "after (B)", "gate"),
            [_example_md(e) for e in rows.examples],
        )
    return lines


def _example_md(e: RowExample) -> tuple[str, ...]:
    gate = f"{e.gate}: {e.detail}" if e.gate and e.detail else (e.gate or "")
    before, after = side_by_side(e.before, e.after, 300)
    return (f"`{e.row_id}`", e.change, e.field or "-", before, after, gate)
