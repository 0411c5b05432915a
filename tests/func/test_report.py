"""``fdbuild report`` on a three-run chain of the Text2SQL recipe (judge gate, rules, SQL
gates): what the page holds, that it needs nothing from the network, that every text is
escaped, and how runs are named."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import recipe_project, recipe_responder

TARGET = "targets/text2sql_sft.yaml"
# build 2 raises the judge's bar (rows flip kept->dropped, no teacher call); build 3 swaps
# the teacher's model (another tag, the same digest: everything is asked again)
STEPS = [
    (),
    ("--set", "nodes.judged.keep.score.min=0.85"),
    ("--set", "teachers.main.model=student-1"),
]


@pytest.fixture
def chain(project: ProjectDir, make_ollama_server, monkeypatch) -> ProjectDir:
    srv = make_ollama_server(
        {DEFAULT_MODEL: DEFAULT_DIGEST, "student-1": "5" * 64}, responder=recipe_responder
    )
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    recipe_project(project, ["text2sql_sft"])
    for step in STEPS:
        project.build(TARGET, *step)
    return project


def expected_charts() -> int:
    # timeline + pass rates + one judge histogram + latency and tokens/s of the one generate node
    return 1 + 1 + 1 + 2


def test_report_of_the_latest_chain(chain: ProjectDir) -> None:
    result = chain.cli("report")
    path = Path(result.stdout.strip())
    runs = [chain.cli("show", f"@~{n}", "--json").json() for n in (2, 1, 0)]
    assert path == chain.root / ".fdbuild/reports" / f"{runs[-1]['run_id']}.html"
    page = path.read_text(encoding="utf-8")
    assert f'data-charts="{expected_charts()}"' in page
    assert page.count("<svg") == expected_charts()
    for run in runs:
        assert run["run_id"] in page
    # what changed, per run: the keep rule, then the model
    assert "judged.keep.score.min" in page and "teachers.main.model" in page
    assert "student-1" in page and DEFAULT_DIGEST[:12] in page
    # pass rate points: one per gate per run
    gates = ["rules", "parsed", "executed", "judged"]
    assert page.count("<circle") == 3 + 3 * len(gates)
    for gate in gates:
        rate = runs[0]["reports"]["quality"][gate]["pass_rate"]
        assert f"{gate}: {rate:.3f}" in page
    # the judge histogram counts every judged row of the latest run
    judged = runs[-1]["nodes"]["judged"]["output"]["rows"]
    assert f"judged.score (n={judged})" in page
    # per-call latencies from the cached generations: one per generation
    generations = runs[-1]["nodes"]["sql"]["output"]["rows"]
    assert f"latency per call, sql (ollama student-1:latest) (n={generations})" in page
    assert "no compare node in this chain" in page
    # rows flipped between runs 2 and 3 are listed with their SQL text
    assert f"to <code>{runs[-1]['run_id']}</code>" in page
    assert page.count('<tr class="flip">') > 0
    assert "SELECT" in page.split('id="flips"')[1]


def test_report_of_one_step_shows_the_keep_flips(chain: ProjectDir, tmp_path: Path) -> None:
    out = tmp_path / "two.html"
    chain.cli("report", "@~2", "@~1", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    flips = re.findall(r'<tr class="flip">.*?</tr>', page, re.S)
    assert flips and all("kept-&gt;dropped" in f for f in flips)  # a higher bar only drops
    assert all("score=" in f for f in flips)


def test_the_page_needs_no_network_and_escapes_text(chain: ProjectDir, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    chain.cli("report", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page
    assert not re.search(r'(src|href)="', page)
    assert "@import" not in page and "url(" not in page
    # SQL with '<' or quotes in rows or templates shows escaped: no stray tag from data
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "h3",
        "p",
        "div",
        "svg",
        "text",
        "line",
        "polyline",
        "circle",
        "rect",
        "table",
        "tr",
        "th",
        "td",
        "code",
        "pre",
        "span",
        "br",
    }


def test_one_run_and_bad_names(chain: ProjectDir, tmp_path: Path) -> None:
    out = tmp_path / "first.html"
    chain.cli("report", "@~2", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "one run only: nothing to compare" in page
    assert page.count("<svg") == int(re.search(r'data-charts="(\d+)"', page).group(1))
    err = chain.cli("report", "nosuchrun", expect=2).stderr
    assert "no run named 'nosuchrun'" in err


def test_open_hands_the_page_to_the_browser(chain: ProjectDir, monkeypatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda uri: opened.append(uri) or True)
    path = Path(chain.cli("report", "@", "--open").stdout.strip())
    assert opened == [path.resolve().as_uri()]
    monkeypatch.setattr("webbrowser.open", lambda uri: False)
    assert "no web browser found" in chain.cli("report", "--open").stderr


def test_without_the_cache_and_with_a_damaged_artifact(chain: ProjectDir, tmp_path: Path) -> None:
    """After the row cache is gone, latency and tokens/s come from the run record's
    p50/p95 (bar charts, said so); a damaged artifact is left out with a note, never
    read, and the page is still written."""
    shutil.rmtree(chain.root / ".fdbuild/cache")
    record = chain.cli("show", "@", "--json").json()
    judged = chain.root / ".fdbuild/objects"
    digest = record["nodes"]["judged"]["output"]["digest"].split(":", 1)[1]
    artifact = judged / digest[:2] / f"{digest}.parquet"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the bytes digest can tell
    artifact.write_bytes(bytes(data))
    out = tmp_path / "r.html"
    chain.cli("report", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "latency, sql (ollama student-1:latest) (run record)" in page
    p50 = record["nodes"]["sql"]["stats"]["latency_p50_s"]
    assert f"p50 ({p50:.3g} s)" in page
    assert "no longer in the row cache" in page
    assert f"artifact x3:{digest}" in page and "is damaged" in page
    assert "judged.score (n=0)" in page
    assert page.count("<svg") == expected_charts()
