"""Issue 6: the quickstart target with the real embedded SmolLM2 teacher (no server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed: pip install 'fdbuild[embedded]'"
)

from fdbuild.providers.llamacpp import bundled_gguf_path  # noqa: E402
from tests.support.project import ProjectDir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded


def small_quickstart(project: ProjectDir, rows: int = 6) -> str:
    shutil.copytree(REPO / "examples/wikisql_mini", project.root / "examples/wikisql_mini")
    lines = (REPO / "examples/wikisql_mini/train.jsonl").read_text().splitlines()[:rows]
    project.gen({"examples/wikisql_mini/small.jsonl": "\n".join(lines) + "\n"})
    text = (
        (REPO / "targets/quickstart.yaml")
        .read_text()
        .replace("wikisql_mini/train.jsonl", "wikisql_mini/small.jsonl")
    )
    project.gen({"targets/quickstart.yaml": text})
    return text


def test_quickstart_rebuild_edit_and_model_path_swap(project: ProjectDir) -> None:
    try:
        gguf = bundled_gguf_path("smollm2-135m")
    except Exception as exc:  # the model wheel missing is an install problem, say so
        pytest.skip(f"SmolLM2 model not installed: {exc}")
    text = small_quickstart(project)
    first = project.build("targets/quickstart.yaml", "--json").json()
    assert first["nodes"]["sql"]["computed"] == 6
    assert (project.root / "out/quickstart_sft.jsonl").exists()
    export = project.read_bytes("out/quickstart_sft.jsonl")

    again = project.build("targets/quickstart.yaml", "--json").json()
    assert again["teacher_calls"] == 0
    assert project.read_bytes("out/quickstart_sft.jsonl") == export

    swapped = text.replace("    model: smollm2-135m", f"    model_path: {gguf}")
    assert swapped != text
    project.gen({"targets/quickstart.yaml": swapped})
    summary = project.build("targets/quickstart.yaml", "--json").json()
    assert summary["teacher_calls"] == 0  # same file, same digest: nothing recomputed

    project.gen({"targets/quickstart.yaml": text.replace("Question: {question}", "Q: {question}")})
    edited = project.build("targets/quickstart.yaml", "--json").json()
    assert edited["nodes"]["sql"]["computed"] == 6 and edited["teacher_calls"] == 6

    offline = project.build("targets/quickstart.yaml", "--offline", "--json").json()
    assert offline["teacher_calls"] == 0
