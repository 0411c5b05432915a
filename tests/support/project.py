"""A temporary fdbuild project and an in-process CLI runner (STYLE H15)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fdbuild.cli.main import main


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class ProjectDir:
    """Files of a project under a temp folder, and ``fdbuild`` run inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gen(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def cli(self, *args: str, expect: int | None = 0) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        old = Path.cwd()
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            os.chdir(old)
        result = CliResult(code, out.getvalue(), err.getvalue())
        if expect is not None and code != expect:
            raise AssertionError(
                f"fdbuild {' '.join(args)} exited {code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def build(self, *args: str, expect: int | None = 0) -> CliResult:
        return self.cli("build", *args, expect=expect)


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    root = tmp_path / "proj"
    root.mkdir()
    return ProjectDir(root)


def questions_jsonl(count: int, start: int = 0) -> str:
    return "".join(
        json.dumps(
            {"task_id": f"t{i:03d}", "question": f"What is {i} plus {i}?", "gold": str(2 * i)}
        )
        + "\n"
        for i in range(start, start + count)
    )


def basic_target(
    host: str,
    *,
    n: int = 2,
    template: str = "Question: {question}\nAnswer:",
    keep: str = "{rule_reason: ok}",
    min_chars: int = 10,
    max_chars: int = 2000,
    model: str = "qwen2.5-coder:7b",
    extra_teacher: str = "",
    retries: int = 4,
    provider: str = "ollama",
    revision: str = "r1",
) -> str:
    """The acceptance-test target: source -> generate (n) -> rules gate -> select -> jsonl.

    ``provider="openai"`` talks to the test server's OpenAI-compatible /v1 endpoints, with
    a declared ``revision`` as the digest."""
    where = (
        f"host: {host}"
        if provider == "ollama"
        else f"provider: openai\n    base_url: {host}/v1\n    revision: {revision}"
    )
    return f"""fdbuild: 1
name: basic
teachers:
  main:
    model: {model}
    {where}
    concurrency: 4
    retries: {retries}
{extra_teacher}nodes:
  questions:
    kind: source
    path: data/questions.jsonl
    id: task_id
  answers:
    kind: generate
    input: questions
    teacher: main
    system: You answer arithmetic questions briefly.
    template: {json.dumps(template)}
    decode: {{temperature: 0.7, top_p: 0.9, seed: 11, num_predict: 200}}
    n: {n}
  checked:
    kind: gate
    input: answers
    check: rules
    params: {{min_chars: {min_chars}, max_chars: {max_chars}}}
    keep: {keep}
  kept:
    kind: select
    input: checked
  export:
    kind: export
    input: kept
    format: jsonl
    path: out/answers.jsonl
"""


DOWNSTREAM_TARGET = """fdbuild: 1
name: down
nodes:
  picked:
    kind: select
    input: basic.yaml#checked
  out:
    kind: export
    input: picked
    format: jsonl
    path: out/down.jsonl
"""
"""A target in another file that reads ``basic_target``'s gate (cross-file input)."""
