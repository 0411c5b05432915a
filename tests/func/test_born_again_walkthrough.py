"""Issue 13 acceptance: docs/recipes/born_again.md's evaluation walkthrough, replayed
from the page with the real embedded SmolLM2 (no server): every `$ fdbuild ...` command
of its console blocks runs, exits as the page says, and prints the figures the page
shows (gates, compare, require lines; run ids and wall times aside)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed: pip install 'fdbuild[embedded]'"
)

from tests.support.project import ProjectDir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs/recipes/born_again.md"
pytestmark = pytest.mark.embedded

FIGURE_LINE = re.compile(r"^\s+(gate|compare|require)\b")


def walkthrough() -> list[tuple[str, list[str], int]]:
    """(command, the figure lines it prints, its exit code) per command of the section."""
    text = PAGE.read_text()
    section = text.split("## Evaluate the student against its teacher")[1].split("\n## ")[0]
    steps: list[tuple[str, list[str], int]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        lines = block.splitlines()
        command, shown, code = None, [], 0
        for i, line in enumerate(lines):
            if line.startswith("$ fdbuild"):
                command = line[2:]
            elif line == "$ echo $?":
                code = int(lines[i + 1])
            elif command and FIGURE_LINE.match(line):
                shown.append(line)
        assert command, f"a console block without a command in {PAGE}"
        steps.append((command, shown, code))
    return steps


def test_the_page_has_the_walkthrough() -> None:
    steps = walkthrough()
    assert [s[2] for s in steps] == [0, 0, 6, 0]
    assert any("kappa" in line for _, shown, _ in steps for line in shown)


def test_the_walkthrough_replays_with_the_figures_it_shows(project: ProjectDir) -> None:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    for name in ("text2sql_eval.yaml", "born_again_compare.yaml"):
        project.gen({f"targets/{name}": (REPO / "targets" / name).read_text()})
    for command, shown, code in walkthrough():
        args = shlex.split(command)[1:]
        result = project.cli(*args, expect=code)
        printed = [line for line in result.stdout.splitlines() if FIGURE_LINE.match(line)]
        for line in shown:
            assert line in printed, f"{command}: the page shows {line!r}; printed:\n{result.stdout}"
        if args[0] == "report":
            assert (project.root / args[-1]).stat().st_size > 0
