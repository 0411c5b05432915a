"""The report in a real headless browser (Chromium from the system packages): it renders
without console errors, every chart is drawn (the ``<svg>`` elements in the rendered DOM
equal the page's ``data-charts``), the flipped rows are there, and a screenshot is kept
as a test artifact (in ``$FDBUILD_TEST_ARTIFACTS`` when set, else the test's temp dir).

Without a browser the test skips, except in CI (``CI`` set), where it fails: CI installs
``chromium`` (.ci/run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.func.test_report import chain, expected_charts  # noqa: F401 - the fixture, by name
from tests.support.project import ProjectDir

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONSOLE = re.compile(r"(CONSOLE|console).*|Uncaught .*|Failed to load resource.*")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("CI is set but no Chromium was found (.ci/run installs `chromium`)")
    pytest.skip("no headless Chromium here: apt-get install chromium")


def headless(exe: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run, its profile in a temp dir, no network but file://."""
    command = [
        exe,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={home / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",
        *args,
    ]
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def console_errors(stderr: str) -> list[str]:
    return [m.group(0) for m in CONSOLE.finditer(stderr) if "Deprecat" not in m.group(0)]


def artifacts_dir(tmp_path: Path) -> Path:
    where = os.environ.get("FDBUILD_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_console_errors_are_caught(tmp_path: Path) -> None:
    """The console check itself: a page that logs an error is seen to."""
    exe = browser()
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><script>console.error('boom from the page')</script></body></html>"
    )
    result = headless(exe, "--dump-dom", page.as_uri(), home=tmp_path)
    assert any("boom from the page" in e for e in console_errors(result.stderr)), result.stderr


def test_report_renders_in_headless_chromium(chain: ProjectDir, tmp_path: Path) -> None:  # noqa: F811
    exe = browser()
    page = tmp_path / "report.html"
    chain.cli("report", "--out", str(page))

    dom = headless(exe, "--dump-dom", page.as_uri(), home=tmp_path)
    assert dom.returncode == 0, dom.stderr
    assert console_errors(dom.stderr) == [], dom.stderr
    rendered = dom.stdout
    charts = int(re.search(r'data-charts="(\d+)"', rendered).group(1))
    assert charts == expected_charts()
    assert len(re.findall(r"<svg\b", rendered)) == charts
    # every chart has marks drawn in it (points, bars or the timeline's dots)
    for chart in re.findall(r"<svg\b.*?</svg>", rendered, re.S):
        assert re.search(r"<(circle|rect)\b", chart), chart[:200]
    flips = re.findall(r'<tr class="flip">', rendered)
    assert flips, "no flipped rows rendered"

    shot = artifacts_dir(tmp_path) / "report.png"
    result = headless(
        exe, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri(), home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert console_errors(result.stderr) == [], result.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not blank
