"""The report page: one HTML file, its style inline, its charts inline SVG, no script,
no external font, image or link target it needs to load. Every text from a record or a
row goes through ``html.escape``.

``<body data-charts="N">`` says how many charts the page draws (``ReportData
.chart_count``): the browser test counts the ``<svg>`` elements against it.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fdbuild import __version__
from fdbuild.records import short_digest
from fdbuild.report import svg
from fdbuild.report.data import ReportData, RunPoint

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1220px;
       color: #111827; background: #fff; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #e5e7eb; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f9fafb; }
code, pre { font: 12px/1.4 ui-monospace, monospace; }
pre { white-space: pre-wrap; max-width: 560px; margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
svg.chart { border: 1px solid #e5e7eb; background: #fff; }
svg .grid { stroke: #f3f4f6; } svg .tick { font-size: 11px; fill: #4b5563; }
svg .ctitle { font-size: 13px; font-weight: 600; fill: #111827; }
.note { color: #6b7280; } .kept { color: #15803d; } .dropped { color: #b91c1c; }
td.kept, td.dropped { white-space: nowrap; }
"""


def render(data: ReportData, title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head>",
        f'<body data-charts="{data.chart_count()}">',
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">fdbuild {escape(__version__)}; {len(data.runs)} run(s), '
        "oldest first. Every figure comes from the run records and the artifacts they "
        "name.</p>",
    ]
    parts += [f'<p class="note">{escape(n)}</p>' for n in data.notes]
    parts += _timeline(data.runs)
    parts += _pass_rates(data)
    parts += _scores(data)
    parts += _timings(data)
    parts += _compare(data.compare)
    parts += _flips(data)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _short(run_id: str) -> str:
    return run_id.split("-")[0][4:13] + "-" + run_id.rsplit("-", 1)[-1] if "-" in run_id else run_id


def _timeline(runs: list[RunPoint]) -> list[str]:
    points = [
        (
            _short(r.run_id),
            f"{r.rows_kept if r.rows_kept is not None else '?'} rows",
            bool(r.changes),
        )
        for r in runs
    ]
    out = ["<h2>Run chain</h2>", '<div class="charts">', svg.timeline("runs", points), "</div>"]
    out.append(
        "<table><tr><th>run</th><th>target</th><th>started</th><th>status</th>"
        "<th>teachers</th><th>rows kept</th><th>what changed since the run before</th></tr>"
    )
    for r in runs:
        teachers = "<br>".join(
            f"{escape(n)}: <code>{escape(m)}</code> <code>{escape(short_digest(d))}</code>"
            for n, m, d in r.teachers
        )
        changes = (
            "<br>".join(
                f"<code>{escape(c.scope)}.{escape(c.name)}</code>: "
                f"<code>{escape(_value(c.before))}</code> &rarr; <code>{escape(_value(c.after))}</code>"
                for c in r.changes
            )
            or '<span class="note">nothing (first run, or the same parameters)</span>'
        )
        out.append(
            f"<tr><td><code>{escape(r.run_id)}</code></td><td>{escape(r.target)}</td>"
            f"<td>{escape(r.started_at or '?')}</td><td>{escape(r.status)}</td>"
            f"<td>{teachers}</td><td>{r.rows_kept if r.rows_kept is not None else '?'}</td>"
            f"<td>{changes}</td></tr>"
        )
    out.append("</table>")
    return out


def _value(value: Any, limit: int = 120) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pass_rates(data: ReportData) -> list[str]:
    if not data.pass_rates:
        return ["<h2>Pass rates</h2>", '<p class="note">no gate in this chain</p>']
    labels = [_short(r.run_id) for r in data.runs]
    chart = svg.line_chart("pass rate per gate along the chain", labels, data.pass_rates)
    return ["<h2>Pass rates</h2>", '<div class="charts">', chart, "</div>"]


def _scores(data: ReportData) -> list[str]:
    out = ["<h2>Scores (latest run)</h2>"]
    if not data.scores:
        return out + ['<p class="note">no judge gate in the latest run</p>']
    out.append('<div class="charts">')
    out += [svg.histogram(name, values) for name, values in data.scores.items()]
    return out + ["</div>"]


def _timings(data: ReportData) -> list[str]:
    out = ["<h2>Latency and throughput per teacher (latest run)</h2>"]
    if not data.timings:
        return out + ['<p class="note">no generate node in the latest run</p>']
    out.append('<div class="charts">')
    for t in data.timings:
        label = f"{t.node} ({t.teacher})"
        if t.from_cache:
            out.append(svg.histogram(f"latency per call, {label}", t.latencies_s, unit=" s"))
            out.append(svg.histogram(f"tokens/s per call, {label}", t.tokens_per_s))
        else:
            out.append(
                svg.bar_chart(
                    f"latency, {label} (run record)", [("p50", t.p50_s), ("p95", t.p95_s)], " s"
                )
            )
            out.append(
                svg.bar_chart(f"tokens/s, {label} (run record)", [("mean", t.mean_tokens_per_s)])
            )
    return out + ["</div>"]


def _compare(compare: dict[str, Any]) -> list[str]:
    out = ["<h2>Teacher vs student</h2>"]
    if not compare:
        return out + ['<p class="note">no compare node in this chain</p>']
    for name, figures in sorted(compare.items()):
        out.append(f"<h3>{escape(name)}</h3>")
        out += _figure_table(figures)
    return out


def _figure_table(figures: Any) -> list[str]:
    """A compare node's figures: one row per figure path (nested mappings flattened)."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in sorted(value.items()):
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows.append((prefix, value))

    walk("", figures)
    out = ["<table><tr><th>figure</th><th>value</th></tr>"]
    for k, v in rows:
        shown = f"{v:.4g}" if isinstance(v, float) else _value(v)
        out.append(f"<tr><td><code>{escape(k)}</code></td><td>{escape(shown)}</td></tr>")
    return out + ["</table>"]


def _flips(data: ReportData) -> list[str]:
    out = ["<h2>Rows whose verdict flipped</h2>"]
    if data.flip_runs is None:
        why = "one run only: nothing to compare" if len(data.runs) < 2 else "not shown (see above)"
        return out + [f'<p class="note">{why}</p>']
    a, b = data.flip_runs
    total = sum(data.flip_counts.values())
    out.append(
        f"<p>{total} row(s) flipped from <code>{escape(a)}</code> to <code>{escape(b)}</code>"
        f"{'; examples below' if data.flips else ''}.</p>"
    )
    if not data.flips:
        return out
    out.append(
        '<table id="flips"><tr><th>row</th><th>change</th><th>gate</th><th>why</th><th>text</th></tr>'
    )
    for f in data.flips:
        css = "kept" if f.change.endswith("kept") else "dropped"
        out.append(
            f'<tr class="flip"><td><code>{escape(f.row_id)}</code></td>'
            f'<td class="{css}">{escape(f.change)}</td><td>{escape(f.gate or f.node)}</td>'
            f"<td>{escape(f.detail or '')}</td><td><pre>{escape(f.text or '')}</pre></td></tr>"
        )
    return out + ["</table>"]
