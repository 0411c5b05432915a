"""The report's hand-written SVG charts: counts drawn as bars, rates as points, text
escaped, output stable."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fdbuild.report import svg

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # well-formed XML, or this raises


def bar_counts(text: str) -> list[int]:
    return [
        int(t.rsplit(": ", 1)[1]) for t in re.findall(r"<rect[^>]*><title>([^<]*)</title>", text)
    ]


def test_histogram_counts_every_value_in_its_bin() -> None:
    values = [0.0, 0.1, 0.1, 0.5, 0.9, 1.0, 1.0, 1.0]
    text = svg.histogram("scores", values, bins=4)
    parse(text)
    assert bar_counts(text) == [3, 0, 1, 4]  # [0, .25) [.25, .5) [.5, .75) [.75, 1]
    assert "scores (n=8)" in text


def test_histogram_of_one_value_and_of_none() -> None:
    assert sum(bar_counts(svg.histogram("same", [2.0, 2.0, 2.0], bins=5))) == 3
    empty = svg.histogram("none", [])
    parse(empty)
    assert "no values" in empty and "<rect" not in empty


def test_line_chart_draws_a_point_per_value_and_breaks_on_missing() -> None:
    text = svg.line_chart(
        "rates", ["a", "b", "c"], {"g1": [1.0, 0.5, None], "g2": [0.0, 0.25, 1.0]}
    )
    root = parse(text)
    circles = root.findall(f"{NS}circle")
    assert len(circles) == 5
    assert len(root.findall(f"{NS}polyline")) == 2
    ys = [float(c.get("cy")) for c in circles[:2]]
    assert ys[0] < ys[1]  # a higher rate is drawn higher up
    assert [c.find(f"{NS}title").text for c in circles[:2]] == ["g1: 1.000", "g1: 0.500"]


def test_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & more'
    for text in (
        svg.histogram(hostile, [1.0]),
        svg.line_chart(hostile, [hostile], {hostile: [0.5]}),
        svg.bar_chart(hostile, [(hostile, 1.0), ("none", None)]),
        svg.timeline(hostile, [(hostile, hostile, True)]),
    ):
        parse(text)
        assert "<script" not in text and "&lt;script&gt;" in text


def test_bar_chart_labels_a_missing_value() -> None:
    text = svg.bar_chart("latency", [("p50", 0.25), ("p95", None)], " s")
    assert text.count("<rect") == 1 and "p95 (n/a)" in text and "p50 (0.25 s)" in text


def test_output_is_stable() -> None:
    values = [0.3, 0.7, 0.71]
    assert svg.histogram("h", values) == svg.histogram("h", list(values))
    assert svg.timeline("t", [("a", "1", False), ("b", "2", True)]).count("<circle") == 2
