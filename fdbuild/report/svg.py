"""Hand-written inline SVG charts: no script and no library, so the page needs nothing
at view time and every chart is drawn by any browser (or read as text in a diff).

Each function returns one ``<svg class="chart">`` element; every text in it is escaped.
Coordinates are rounded to one decimal so the output is stable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 52


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _fmt(value: float, lo: float, hi: float) -> str:
    """Enough significant digits to tell ``lo`` from ``hi`` apart (1000 vs 1000.4)."""
    span = abs(hi - lo) or 1.0
    digits = max(3, math.ceil(math.log10(max(abs(lo), abs(hi), span) / span)) + 2)
    return f"{value:.{min(digits, 12)}g}"


def _open(title: str, height: int = H) -> list[str]:
    return [
        f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {W} {height}" width="{W}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" class="ctitle">{escape(title)}</text>',
    ]


def _axes(lo: float, hi: float, fmt: str = "{:.2f}", ticks: int = 4) -> list[str]:
    """The y axis (with ticks from ``lo`` to ``hi``) and the x baseline."""
    out = []
    for i in range(ticks + 1):
        value = lo + (hi - lo) * i / ticks
        y = _y(value, lo, hi)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" class="grid"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end" class="tick">'
            f"{escape(fmt.format(value))}</text>"
        )
    return out


def _y(value: float, lo: float, hi: float) -> float:
    span = (hi - lo) or 1.0
    return TOP + (H - TOP - BOTTOM) * (1 - (value - lo) / span)


def _x(i: int, count: int) -> float:
    if count <= 1:
        return (LEFT + W - RIGHT) / 2
    pad = 60  # room for a centred label at either end
    return LEFT + pad + (W - RIGHT - LEFT - 2 * pad) * i / (count - 1)


def line_chart(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]]
) -> str:
    """Rates in [0, 1] along the x labels, one line (with points) per series; a missing
    value breaks the line."""
    out = _open(title) + _axes(0.0, 1.0)
    count = len(labels)
    for i, label in enumerate(labels):
        out.append(
            f'<text x="{_n(_x(i, count))}" y="{H - BOTTOM + 16}" text-anchor="middle" '
            f'class="tick">{escape(label)}</text>'
        )
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        points = [(_x(i, count), _y(v, 0.0, 1.0), v) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y, _ in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, v in points:
            out.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{color}">'
                f"<title>{escape(name)}: {v:.3f}</title></circle>"
            )
        lx = LEFT + 130 * k
        out.append(f'<rect x="{lx}" y="{H - 20}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{H - 11}" class="tick">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def histogram(title: str, values: Sequence[float], unit: str = "", bins: int = 12) -> str:
    """Counts of ``values`` in equal-width bins between their min and max."""
    out = _open(f"{title} (n={len(values)})")
    if not values:
        out.append(f'<text x="{LEFT}" y="{H / 2}" class="tick">no values</text></svg>')
        return "\n".join(out)
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    out += _axes(0, top, "{:.0f}", ticks=min(4, top))
    width = (W - LEFT - RIGHT) / bins
    for i, c in enumerate(counts):
        x0 = LEFT + i * width
        y = _y(c, 0, top)
        a, b = lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins
        out.append(
            f'<rect x="{_n(x0 + 1)}" y="{_n(y)}" width="{_n(width - 2)}" '
            f'height="{_n(H - BOTTOM - y)}" fill="{PALETTE[0]}">'
            f"<title>{escape(f'{_fmt(a, lo, hi)}-{_fmt(b, lo, hi)}{unit}: {c}')}</title></rect>"
        )
    for i in (0, bins // 2, bins):
        value = lo + (hi - lo) * i / bins
        out.append(
            f'<text x="{_n(LEFT + i * width)}" y="{H - BOTTOM + 16}" text-anchor="middle" '
            f'class="tick">{escape(_fmt(value, lo, hi) + unit)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(title: str, bars: Sequence[tuple[str, float | None]], unit: str = "") -> str:
    """One bar per (label, value); a missing value is labelled, not drawn."""
    out = _open(title)
    values = [v for _, v in bars if v is not None]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0
    out += _axes(0, top, "{:.3g}")
    width = (W - LEFT - RIGHT) / max(1, len(bars))
    for i, (label, v) in enumerate(bars):
        x0 = LEFT + i * width
        cx = x0 + width / 2
        if v is not None and not math.isnan(v):
            y = _y(v, 0, top)
            out.append(
                f'<rect x="{_n(x0 + width * 0.2)}" y="{_n(y)}" width="{_n(width * 0.6)}" '
                f'height="{_n(H - BOTTOM - y)}" fill="{PALETTE[i % len(PALETTE)]}">'
                f"<title>{escape(f'{label}: {v:.3g}{unit}')}</title></rect>"
            )
        shown = f"{v:.3g}{unit}" if v is not None else "n/a"
        out.append(
            f'<text x="{_n(cx)}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick">'
            f"{escape(label)} ({escape(shown)})</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def timeline(title: str, points: Sequence[tuple[str, str, bool]]) -> str:
    """The run chain left to right: (label, sub-label, changed) per run; a run whose
    parameters changed from the one before is a filled dot."""
    height = 120
    out = _open(title, height)
    count = len(points)
    y = 58
    if count > 1:
        out.append(
            f'<line x1="{_n(_x(0, count))}" x2="{_n(_x(count - 1, count))}" y1="{y}" y2="{y}" '
            'stroke="#9ca3af" stroke-width="2"/>'
        )
    for i, (label, sub, changed) in enumerate(points):
        x = _x(i, count)
        fill = PALETTE[0] if changed else "#ffffff"
        out.append(
            f'<circle cx="{_n(x)}" cy="{y}" r="8" fill="{fill}" stroke="{PALETTE[0]}" '
            f'stroke-width="2"><title>{escape(label)}</title></circle>'
        )
        out.append(
            f'<text x="{_n(x)}" y="{y - 16}" text-anchor="middle" class="tick">{escape(label)}</text>'
        )
        out.append(
            f'<text x="{_n(x)}" y="{y + 28}" text-anchor="middle" class="tick">{escape(sub)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
